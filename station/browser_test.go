package station

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"id06/personalize"
	"id06/queue"
)

var opUpdateDocs = flag.Bool("update-docs", false, "rewrite docs/dashboard.png from the browser test")

// needBrowser returns Debian's chromium, or skips when it is missing, unless
// STATION_REQUIRE_INTEGRATION=1 (CI) makes that a failure.
func opNeedBrowser(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("STATION_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; apt-get install chromium to run the browser tests")
	return ""
}

// repoFile finds a file of the repository (or the shared test data next to
// it) by walking up from the package directory.
func opRepoFile(t *testing.T, rel ...string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		for _, base := range []string{d, filepath.Dir(d)} {
			p := filepath.Join(append([]string{base}, rel...)...)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatalf("%s not found above %s", filepath.Join(rel...), dir)
	return ""
}

func opRepoRoot(t *testing.T) string { return filepath.Dir(opRepoFile(t, "go.mod")) }

// exampleWithPhoto is examples/order.json with its id, photo, express flag
// and approval time replaced.
func opExample(t *testing.T, id, photo string, express bool) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(opRepoRoot(t), "examples", "order.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(opRepoFile(t, "shared", "testdata", "photos", "dev", photo))
	if err != nil {
		t.Fatal(err)
	}
	doc["id"], doc["photo"], doc["express"] = id, base64.StdEncoding.EncodeToString(img), express
	doc["approvals"] = []map[string]any{{"kind": "holder", "method": "bankid", "at": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)}}
	out, _ := json.Marshal(doc)
	return out
}

func opSubmit(t *testing.T, base, token string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/orders", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
}

func opWait(t *testing.T, s *Server, id string, want queue.State) *queue.Order {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		o, err := s.store.Get(context.Background(), id)
		if err == nil && o.State == want {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s: %v, want %s", id, o, want)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// untilJS waits until a JavaScript expression is true in the page. The
// page is never reloaded by the test: what it waits for must arrive by the
// page's own server-sent events.
func opUntil(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))
}

func opCount(state string, n int) chromedp.Action[chromedp.Void] {
	return opUntil(fmt.Sprintf(`(document.querySelector('#count-%s .n') || {}).textContent === '%d'`, state, n))
}

func TestBrowserOperatorFlows(t *testing.T) {
	chromium := opNeedBrowser(t)
	cfg := Defaults()
	cfg.DataDir, cfg.Listen, cfg.Printer = t.TempDir(), "127.0.0.1:0", "spool"
	s, addr, logs := opRunStation(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("station log:\n%s", logs.String())
		}
	})
	s.ops.poll = 200 * time.Millisecond
	base := "http://" + addr
	token, err := os.ReadFile(cfg.DevTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	supplierToken := strings.TrimSpace(string(token))
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	opUser(t, s, "quinn", queue.RoleQA, opPassword)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelTimeout()
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		start := time.Now()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		t.Logf("%s: %s", step, time.Since(start).Round(time.Millisecond))
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	artefacts := os.Getenv("STATION_ARTIFACTS")
	if artefacts == "" {
		artefacts = t.TempDir()
	}
	if err := os.MkdirAll(artefacts, 0o755); err != nil {
		t.Fatal(err)
	}
	screenshot := func(name string) []byte {
		t.Helper()
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(artefacts, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", filepath.Join(artefacts, name))
		return shot
	}
	login := func(user string) {
		t.Helper()
		do("log in as "+user,
			chromedp.Navigate(base+"/ui/"),
			chromedp.WaitVisible(chromedp.ID("user")),
			chromedp.SendKeys(chromedp.ID("user"), user),
			chromedp.SendKeys(chromedp.ID("password"), opPassword),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("station-state")),
			opUntil(`document.documentElement.dataset.live === 'connected'`))
	}
	logout := func() {
		t.Helper()
		do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("user")))
	}

	// A wrong password is refused on the page too.
	do("wrong password",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), "eva"),
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("login-error")))

	// Log in, and watch an order go to produced without reloading.
	login("eva")
	opSubmit(t, base, supplierToken, opExample(t, "web-0001", "pass_london_001_03.jpg", false))
	do("order produced on the dashboard", opCount("produced", 1), opUntil(`document.querySelector('#produced-today').textContent.trim() === '1'`))
	produced := opWait(t, s, "web-0001", queue.Produced)

	// A photo the checks refuse appears in needs_fix, live as well.
	opSubmit(t, base, supplierToken, opExample(t, "web-0002", "fail_zoom60cm_busy_bg.jpg", false))
	do("needs_fix on the dashboard", opCount("needs_fix", 1))

	// Pause with a message for the floor; an express order waits, with its
	// deadline on the dashboard.
	do("pause",
		chromedp.SendKeys(chromedp.ID("pause-message"), "Byte av färgband / ribbon change"),
		chromedp.Click(chromedp.ID("pause")),
		chromedp.WaitVisible(chromedp.ID("pause-banner")),
		chromedp.WaitVisible(chromedp.ID("resume")))
	if paused, msg := s.pipeline.Paused(); !paused || msg != "Byte av färgband / ribbon change" {
		t.Fatalf("station paused=%v %q", paused, msg)
	}
	opSubmit(t, base, supplierToken, opExample(t, "web-0003", "pass_london_004_03.jpg", true))
	do("express order waits while paused", opCount("ready", 1), chromedp.WaitVisible(chromedp.CSS("#express tbody tr")))
	if left := text("#express .left"); !strings.HasPrefix(left, "1:5") && !strings.HasPrefix(left, "2:00") {
		t.Fatalf("express time left %q, want about 1:59", left)
	}
	shot := screenshot("dashboard.png")
	if *opUpdateDocs {
		if err := os.WriteFile(filepath.Join(opRepoRoot(t), "docs", "dashboard.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Open the needs_fix order and override its verdict with a reason.
	do("override",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/needs-fix"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#needs-fix a[href="/ui/orders/web-0002"]`)),
		chromedp.Click(chromedp.CSS(`#needs-fix a[href="/ui/orders/web-0002"]`)),
		chromedp.WaitVisible(chromedp.ID("img-photo")),
		chromedp.WaitVisible(chromedp.ID("reasons")),
		chromedp.SendKeys(chromedp.ID("override-reason"), "Background acceptable after review"),
		chromedp.Click(chromedp.ID("override-pass")),
		chromedp.WaitVisible(chromedp.ID("done")))
	overridden := opWait(t, s, "web-0002", queue.Ready)
	if overridden.PhotoOverride != "pass" {
		t.Fatalf("override %q", overridden.PhotoOverride)
	}
	do("order page follows the order live", opUntil(`document.querySelector('#order-state').dataset.state === 'ready'`),
		chromedp.WaitVisible(chromedp.ID("img-portrait")))
	screenshot("order.png")
	if timeline := text("#events"); !strings.Contains(timeline, "operator:eva") || !strings.Contains(timeline, "Background acceptable after review") {
		t.Fatalf("timeline lacks the override: %q", timeline)
	}

	// QA: the produced card is put back in the (paused) encoder's reader
	// and a QA user verifies it.
	ejected := filepath.Join(cfg.DataDir, "sim", "ejected", strings.ToLower(produced.ChipUID)+".json")
	card, err := os.ReadFile(ejected)
	if err != nil {
		t.Fatalf("the produced card: %v", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "sim", "slot.json"), card, 0o600); err != nil {
		t.Fatal(err)
	}
	logout()
	login("quinn")
	do("QA verify",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/qa"]`)),
		chromedp.WaitVisible(chromedp.ID("qa-verify")),
		chromedp.Click(chromedp.ID("qa-verify")),
		chromedp.WaitVisible(chromedp.ID("qa-report")))
	screenshot("qa.png")
	if got := text("#qa-card"); got != produced.CardNumber {
		t.Fatalf("QA read card %q, want %s", got, produced.CardNumber)
	}
	// Without the PIN the PIN-protected objects, the 9A key and (no CRL
	// given) revocation cannot be checked: incomplete, never "passed".
	if got := text("#qa-result"); got != "No check failed, but some could not run" {
		t.Fatalf("QA result %q; checks: %s", got, text("#qa-checks"))
	}
	if !opHasAudit(t, s, "operator:quinn qa_verify") {
		t.Fatalf("QA run not audited: %v", opAudit(t, s))
	}
	// The QA role may not resume production: the button is not offered.
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#resume').length`)); err != nil || n != 0 {
		t.Fatalf("resume offered to QA: %d %v", n, err)
	}
	// The card leaves the reader before production resumes.
	if err := s.reader.(personalize.Ejector).Eject(context.Background()); err != nil {
		t.Fatal(err)
	}
	logout()

	// Resume in Swedish; both waiting orders are produced, live.
	login("eva")
	do("svenska", chromedp.Click(chromedp.ID("lang-sv")), chromedp.WaitVisible(chromedp.CSS("#lang-sv.on")), opUntil(`document.querySelector('nav a[href="/ui/"]').textContent === 'Översikt'`))
	do("resume",
		chromedp.Click(chromedp.ID("resume")),
		chromedp.WaitVisible(chromedp.ID("pause")),
		opCount("produced", 3),
		opUntil(`document.querySelectorAll('#express tbody tr').length === 0`))
	if got := text("#station-state .big"); got != "I drift" {
		t.Fatalf("station state label %q, want I drift", got)
	}
	express := opWait(t, s, "web-0003", queue.Produced)
	if express.ProducedAt.After(express.Deadline) {
		t.Fatal("express order missed its deadline in the test")
	}

	// Nothing personal reached the log: not the holder's name, personnummer,
	// e-mail or phone, nor the operators' passwords.
	out := logs.String()
	if !strings.Contains(out, "web-0003") {
		t.Fatal("the log does not name orders at all; the check below would prove nothing")
	}
	for _, secret := range []string{"Łukasz", "Anna", "19850412", "anna@example.se", "+46701234567", opPassword, "not the password"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}
