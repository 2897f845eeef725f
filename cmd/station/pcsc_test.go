package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/personalize/pcscdtest"
)

// The whole station through the real pcscd: the daemon encodes a card in
// vpcd's reader (the emulator behind vsmartcard), then QA's `station verify`
// passes on it, and fails naming the object after yubico-piv-tool alters it.
func TestStationThroughPCSCD(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pcscd and the real binary")
	}
	bin := stationBinary(t)
	env := pcscdtest.Start(t, []string{bin, "sim", "card", "--vpcd", pcscdtest.VPCDAddr})
	dir := t.TempDir()
	d := startDaemonEnv(t, dir, env.Environ(), "--reader", "pcsc:"+pcscdtest.ReaderName)
	if code, b, _ := d.do(http.MethodPost, "/v1/orders", orderJSON(t, "pcsc-1", passPhotos(t)[3], false)); code != http.StatusCreated {
		t.Fatalf("%d %s", code, b)
	}
	o := d.waitFinal([]string{"pcsc-1"}, 3*time.Minute)["pcsc-1"]
	if o.State != "produced" {
		t.Fatalf("pcsc-1 ended %s: %+v\n%s\n%s", o.State, o.Events, d.stderr.String(), env.Log())
	}
	d.stop()

	verify := func() (report struct {
		UID        string
		CardNumber string `json:"card_number"`
		OK         bool
		Order      string
		Checks     []struct {
			Name string
			OK   bool
		}
	}, code int, out string) {
		cmd := exec.Command(bin, "verify", "--reader", "Virtual", "--json", "--data", dir)
		cmd.Env = env.Environ()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("verify output is not JSON (exit %d): %v\n%s\n%s", code, err, stdout.String(), stderr.String())
		}
		return report, code, stdout.String()
	}
	rep, code, out := verify()
	if code != 0 || !rep.OK || rep.CardNumber != o.CardNumber || rep.Order != "pcsc-1" {
		t.Fatalf("QA verify of a fresh card: exit %d\n%s", code, out)
	}
	if !strings.EqualFold(rep.UID, o.ChipUID) {
		t.Errorf("verify reports chip %s, the order recorded %s", rep.UID, o.ChipUID)
	}

	// Alter the CCC with an independent tool and the transport management key.
	ccc := filepath.Join(t.TempDir(), "ccc.bin")
	if err := os.WriteFile(ccc, []byte{0x53, 0x04, 0xF0, 0x02, 0x00, 0x00}, 0o600); err != nil {
		t.Fatal(err)
	}
	tool := exec.Command("yubico-piv-tool", "-r", "Virtual", "-k010203040506070801020304050607080102030405060708",
		"-a", "write-object", "--id", "0x5FC107", "-f", "binary", "-i", ccc)
	tool.Env = env.Environ()
	if b, err := tool.CombinedOutput(); err != nil {
		t.Fatalf("yubico-piv-tool write-object: %v\n%s", err, b)
	}
	rep, code, out = verify()
	if code != 1 || rep.OK {
		t.Fatalf("verify passed a tampered card: exit %d\n%s", code, out)
	}
	named := false
	for _, c := range rep.Checks {
		if !c.OK && strings.Contains(c.Name, "5FC107") {
			named = true
		}
	}
	if !named {
		t.Fatalf("verify did not name the altered CCC:\n%s", out)
	}
}
