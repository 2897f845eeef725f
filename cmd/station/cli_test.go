package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runCLI runs the station binary and returns stdout, stderr and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(stationBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestHelpListsVerbs(t *testing.T) {
	out, _, code := run2(t, "help")
	if code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for _, v := range []string{"serve", "order submit", "db backup", "photo check", "photo crop", "card render", "verify", "readers", "sim card", "token create"} {
		if !strings.Contains(out, "station "+v) {
			t.Errorf("help does not list %q", v)
		}
	}
	if _, errOut, code := run2(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown verb") {
		t.Errorf("unknown verb: exit %d, %q", code, errOut)
	}
}

// Each verb's usage line comes from the verb table, and names every flag
// the verb takes, so the two cannot drift apart.
func TestUsageNamesEveryFlag(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`)
	for name, v := range verbs {
		if v.run == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			out, errOut, code := run2(t, append(strings.Fields(name), "-h")...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || lines[len(lines)-1] != "usage: station "+v.usage {
				t.Fatalf("-h: exit %d, stdout %q; want the verb table's line last", code, out)
			}
			for _, m := range flagLine.FindAllStringSubmatch(errOut+out, -1) {
				if !strings.Contains(v.usage, "-"+m[1]+" ") && !strings.HasSuffix(v.usage, "-"+m[1]) && !strings.Contains(v.usage, "-"+m[1]+"]") {
					t.Errorf("usage %q does not name --%s", v.usage, m[1])
				}
			}
		})
	}
}

// run2 calls run() in-process (no binary needed) for quick CLI checks.
func run2(t *testing.T, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(context.Background(), context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestPhotoCheckExitCodes(t *testing.T) {
	photos := filepath.Join(sharedDir(t), "testdata", "photos")
	junk := filepath.Join(t.TempDir(), "junk.jpg")
	os.WriteFile(junk, []byte("not an image"), 0o644)
	for _, tc := range []struct {
		file string
		code int
	}{
		{filepath.Join(photos, "dev", "pass_london_001_03.jpg"), 0},
		{filepath.Join(photos, "dev", "fail_chelsea_cat_noface.png"), 1},
		{junk, 2},
	} {
		out, _, code := run2(t, "photo", "check", tc.file, "--json")
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", filepath.Base(tc.file), code, tc.code, out)
			continue
		}
		var res struct {
			Verdict string
			Reasons []struct {
				Code      string `json:"code"`
				MessageEN string `json:"message_en"`
				MessageSV string `json:"message_sv"`
			}
			Metrics map[string]float64
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Errorf("%s: not JSON: %v\n%s", tc.file, err, out)
			continue
		}
		if tc.code != 0 && (len(res.Reasons) == 0 || res.Reasons[0].MessageSV == "") {
			t.Errorf("%s: a refusal without a reason: %s", tc.file, out)
		}
	}
}

func TestPhotoCropWritesPortrait(t *testing.T) {
	dir := t.TempDir()
	out, chip := filepath.Join(dir, "p.png"), filepath.Join(dir, "p.jpg")
	src := filepath.Join(sharedDir(t), "testdata", "photos", "dev", "pass_london_004_03.jpg")
	if _, errOut, code := run2(t, "photo", "crop", src, "-o", out, "--chip-jpeg", chip); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{out, chip} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v: a portrait is personal data, for the user alone", f, fi.Mode().Perm())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// The "att åtgärda" round trip: a bad photo sends the order to needs_fix with
// reasons; a new photo over the API produces it. A second bad order is passed
// by an operator's override from the CLI.
func TestNeedsFixRoundTrip(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	d := startDaemon(t, dir)
	bad, err := os.ReadFile(filepath.Join(sharedDir(t), "testdata", "photos", "synthetic", "fail_blue_background.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"fix-api", "fix-cli"} {
		d.submit(id, bad)
	}
	got := d.waitFinal([]string{"fix-api", "fix-cli"}, time.Minute)
	for id, o := range got {
		if o.State != "needs_fix" {
			t.Fatalf("%s: %s, want needs_fix", id, o.State)
		}
	}
	_, body, _ := d.do(http.MethodGet, "/v1/orders/fix-api", nil)
	if !strings.Contains(string(body), `"code": "background_not_light"`) || !strings.Contains(string(body), "message_sv") {
		t.Fatalf("needs_fix without the reason: %s", body)
	}
	// New photo through the API.
	good := passPhotos(t)[0]
	req, _ := http.NewRequest(http.MethodPut, d.url+"/v1/orders/fix-api/photo", bytes.NewReader(good))
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT photo: %d", resp.StatusCode)
	}
	// Operator override from the CLI on the other one.
	out, errOut, code := runCLI(t, "photo", "override", "fix-cli", "pass", "--reason", "blue wall is the company colour", "--data", dir, "--operator", "eva")
	if code != 0 {
		t.Fatalf("override: %d %s %s", code, out, errOut)
	}
	got = d.waitFinal([]string{"fix-api", "fix-cli"}, 2*time.Minute)
	for id, o := range got {
		if o.State != "produced" {
			t.Errorf("%s: %s, want produced", id, o.State)
		}
	}
	overridden := false
	for _, e := range got["fix-cli"].Events {
		if strings.Contains(e.Note, "overridden to pass: blue wall is the company colour") {
			overridden = true
		}
	}
	if !overridden {
		t.Errorf("override not in the audit trail: %+v", got["fix-cli"].Events)
	}
	// A consistent copy of the database while the daemon runs.
	if _, errOut, code := runCLI(t, "db", "backup", "--data", dir, filepath.Join(t.TempDir(), "copy.db")); code != 0 {
		t.Fatalf("db backup while running: %s", errOut)
	}
}

// verify without the station's PKI says what to pass and creates nothing:
// no development CA appears to check the card against.
func TestVerifyWithoutPKI(t *testing.T) {
	dir := t.TempDir()
	_, errOut, code := run2(t, "verify", "--reader", "sim", "--data", dir)
	if code != 3 || !strings.Contains(errOut, "--config") || !strings.Contains(errOut, "--data") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("verify created %v in the data directory", entries)
	}
	conf := filepath.Join(t.TempDir(), "station.json")
	os.WriteFile(conf, []byte(`{"ca_cert": "/nonexistent/ca.pem", "ca_key": "/nonexistent/ca-key.pem"}`), 0o600)
	if _, errOut, code := run2(t, "verify", "--reader", "sim", "--config", conf); code != 3 || !strings.Contains(errOut, "/nonexistent/ca.pem") {
		t.Fatalf("with a configured CA that is not there: exit %d: %s", code, errOut)
	}
}
