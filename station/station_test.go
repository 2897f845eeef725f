package station

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/chromedp"
	"github.com/go-chi/chi/v5"

	"id06/api"
	"id06/order"
	"id06/personalize"
	"id06/printer"
	"id06/queue"
	"id06/queue/queuetest"
	"id06/station/stationtest"
	"id06/webhook"
	"id06/webhook/webhooktest"
)

// testStation assembles a station as cmd/station does, on real parts in a
// temporary data directory: SQLite on disk, the simulated reader, a
// development PKI, the configured printer. token is a supplier token of
// "dev".
func testStation(t testing.TB, mutate func(*Config)) (*Station, string) {
	return testStationLogged(t, mutate, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func testStationLogged(t testing.TB, mutate func(*Config), log *slog.Logger) (*Station, string) {
	t.Helper()
	cfg := Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	var parts Parts
	var err error
	if parts.Store, err = queue.Open(cfg.Database(), queue.WithStation(cfg.Name), queue.WithSoleStation()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parts.Store.Close() })
	// As cmd/station does at every start.
	if err := Register(context.Background(), parts.Store, true, log); err != nil {
		t.Fatal(err)
	}
	if _, err := parts.Store.Rescue(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	lanes, closeLanes, err := OpenLanes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLanes() })
	parts.Lanes = lanes
	if parts.Chip, err = personalize.New(personalize.Config{PKIDir: filepath.Join(cfg.DataDir, "pki"), CACert: cfg.CACert, CAKey: cfg.CAKey,
		SealTo: cfg.SealTo, Issuer: cfg.Issuer, Certs: cfg.CertProfile()}); err != nil {
		t.Fatal(err)
	}
	parts.Template = printer.DefaultTemplate()
	token, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := parts.Store.AddToken(context.Background(), "dev", token, []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	return New(cfg, parts, log), token
}

// runStation runs a station (pipeline, deliverer, HTTP server) until the
// test ends and returns its address.
func runStation(t *testing.T, mutate func(*Config)) (*Station, string, string) {
	s, addr, token, _ := runStationLogged(t, mutate)
	return s, addr, token
}

// runStationLogged is runStation that keeps what the station logged, for
// privacy checks.
func runStationLogged(t *testing.T, mutate func(*Config)) (*Station, string, string, *stationtest.LogBuffer) {
	t.Helper()
	logs := &stationtest.LogBuffer{}
	s, token := testStationLogged(t, mutate, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ctx, func(a string) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-addr:
		return s, a, token, logs
	case err := <-done:
		t.Fatalf("station did not start: %v", err)
	}
	return nil, "", "", nil
}

// The OpenAPI document names exactly the routes the router serves (the
// operator page under /ui/ is HTML, not API, and is left out).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s, _ := testStation(t, nil)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	served := map[string]bool{}
	anyMethod := map[string]bool{}
	err := chi.Walk(s.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/ui") {
			return nil
		}
		if method == http.MethodConnect { // mounted with Handle: every method; documented as GET
			anyMethod[route] = true
		}
		served[strings.ToLower(method)+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range served {
		if method, route, _ := strings.Cut(k, " "); anyMethod[route] && method != "get" {
			delete(served, k)
		}
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	raw := []byte(get(t, hs.URL+"/v1/openapi.json"))
	if err := json.Unmarshal(raw, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("document: %v, openapi %q", err, doc.OpenAPI)
	}
	// Every reference in the document resolves.
	var whole any
	if err := json.Unmarshal(raw, &whole); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(whole)
	for _, ref := range refs {
		var at any = whole
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, _ := at.(map[string]any)
			at = m[part]
		}
		if at == nil {
			t.Errorf("$ref %s does not resolve", ref)
		}
	}
	if len(refs) < 10 {
		t.Fatalf("only %d $refs found; the walk is broken", len(refs))
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented[method+" "+path] = true
			}
		}
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("served but not documented: %v\ndocumented but not served: %v", missing, extra)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "station test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s, addr, _ := runStation(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz over TLS: %v", err)
	}
	resp.Body.Close()
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP answered on the TLS port")
	}
	// Session cookies are Secure under TLS.
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	b := &stationtest.Browser{T: t, Base: "https://" + addr, Client: client}
	r := b.Post("/ui/login", url.Values{"csrf": {b.CSRF("/ui/login")}, "user": {"eva"}, "password": {stationtest.Password}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("login over TLS: %d", r.Status)
	}
	var secure bool
	for _, line := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "station_session=") {
			secure = strings.Contains(line, "; Secure")
		}
	}
	if !secure {
		t.Fatalf("session cookie without Secure over TLS: %v", r.Header.Values("Set-Cookie"))
	}
}

// Stopping the station ends open event streams, so a browser left on the
// dashboard does not hold the shutdown.
func TestStopEndsEventStreams(t *testing.T) {
	s, _ := testStation(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ctx, func(a string) { addr <- a }) }()
	base := "http://" + <-addr
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	b := stationtest.NewBrowser(t, base)
	b.LoggedIn("eva", stationtest.Password)
	// Shorter than the server's 10 s shutdown grace: a stream the server
	// does not end itself fails this read with a deadline error.
	rctx, rcancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, base+"/ui/events", nil)
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 64)
	if _, err := resp.Body.Read(first); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the event stream was not ended by the stop: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
func TestWebhookDeadLetterAndRedelivery(t *testing.T) {
	broken := webhooktest.NewReceiver(t, "s1", "500")
	hanging := webhooktest.NewReceiver(t, "s2", "hang")
	healthy := webhooktest.NewReceiver(t, "s3", "200")
	s, _ := testStation(t, func(c *Config) {
		c.Suppliers = []webhook.Supplier{
			{Name: "broken", WebhookURL: broken.URL, WebhookSecret: "s1"},
			{Name: "hanging", WebhookURL: hanging.URL, WebhookSecret: "s2"},
			{Name: "healthy", WebhookURL: healthy.URL, WebhookSecret: "s3"},
		}
	})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	// Short pauses, so the test sees several attempts quickly.
	d := s.Deliverer
	d.BaseDelay, d.MaxDelay, d.Poll, d.MaxAttempts = 20*time.Millisecond, 80*time.Millisecond, 10*time.Millisecond, 3
	d.SetTimeout(300 * time.Millisecond)
	queuetest.Cancelled(t, s.Store, "broken", "b-1")
	queuetest.Cancelled(t, s.Store, "hanging", "h-1")
	queuetest.Cancelled(t, s.Store, "healthy", "ok-1")
	queuetest.Cancelled(t, s.Store, "no-webhook", "n-1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	webhooktest.Wait(t, s.Store, "ok-1", func(n *queue.Notice) bool { return n.Delivered })
	dead := webhooktest.Wait(t, s.Store, "b-1", func(n *queue.Notice) bool { return n.Dead })
	hung := webhooktest.Wait(t, s.Store, "h-1", func(n *queue.Notice) bool { return n.Dead })
	if dead.Attempts != 3 || !strings.Contains(dead.LastError, "500") || strings.Contains(dead.LastError, "receiver broken") {
		t.Fatalf("dead notice: attempts %d, last error %q (want the status, not the receiver's body)", dead.Attempts, dead.LastError)
	}
	if !strings.Contains(hung.LastError, "no answer within") {
		t.Fatalf("hanging receiver: last error %q", hung.LastError)
	}
	if n := webhooktest.Notice(t, s.Store, "n-1"); n.Attempts != 0 || n.Dead {
		t.Fatalf("a supplier without webhook_url had its notice attempted: %+v", n)
	}
	time.Sleep(100 * time.Millisecond)
	if len(broken.Deliveries()) != 3 {
		t.Fatalf("a dead notice was still sent: %d requests", len(broken.Deliveries()))
	}
	if !stationtest.HasAudit(t, s.Store, "station webhook_dead") {
		t.Fatalf("dead letters not audited: %v", stationtest.Audit(t, s.Store))
	}
	if m := get(t, hs.URL+"/metrics"); !strings.Contains(m, `station_webhook_deliveries_total{result="dead",station="`+s.Config.Name+`"} 2`) {
		t.Fatalf("dead counter: %s", m)
	}
	// The daemon kept serving throughout.
	if resp, err := http.Get(hs.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v", err)
	}

	// The receiver is fixed; an operator redelivers from the page.
	broken.SetScript("200")
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	b := stationtest.NewBrowser(t, hs.URL)
	token := b.LoggedIn("eva", stationtest.Password)
	page := b.Get("/ui/webhooks").Body
	if !strings.Contains(page, "notice-"+hookID(dead.ID)) || !strings.Contains(page, "Redeliver") {
		t.Fatal("the webhooks page does not offer the dead notice for redelivery")
	}
	if r := b.Post("/ui/notices/"+hookID(dead.ID)+"/redeliver", url.Values{"csrf": {token}}); r.Status != http.StatusSeeOther {
		t.Fatalf("redeliver: %d", r.Status)
	}
	webhooktest.Wait(t, s.Store, "b-1", func(n *queue.Notice) bool { return n.Delivered })
	if !stationtest.HasAudit(t, s.Store, "operator:eva redeliver") {
		t.Fatalf("redelivery not audited: %v", stationtest.Audit(t, s.Store))
	}
	if r := b.Post("/ui/notices/"+hookID(dead.ID)+"/redeliver", url.Values{"csrf": {token}}); r.Status != http.StatusConflict {
		t.Fatalf("redelivering a delivered notice: %d, want 409", r.Status)
	}
	metrics := get(t, hs.URL+"/metrics")
	for _, want := range []string{`station_webhook_deliveries_total{result="dead",station="` + s.Config.Name + `"} 2`,
		`station_webhook_outbox{station="` + s.Config.Name + `",status="dead"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func hookID(n int64) string { b, _ := json.Marshal(n); return string(b) }

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A card produced by the running station reaches the supplier's webhook
// with what the supplier needs to hand it out, signed.
func TestProducedOrderReachesWebhook(t *testing.T) {
	rc := webhooktest.NewReceiver(t, "dev-secret", "200")
	s, addr, token := runStation(t, func(c *Config) {
		c.Suppliers = []webhook.Supplier{{Name: "dev", WebhookURL: rc.URL, WebhookSecret: "dev-secret"}}
	})
	submit(t, "http://"+addr, token, example(t, "hook-1", "pass_london_005_03.jpg", false))
	o := waitState(t, s, "hook-1", order.Produced)
	n := webhooktest.Wait(t, s.Store, "hook-1", func(n *queue.Notice) bool { return n.Delivered })
	var got *webhooktest.Delivery
	for _, d := range rc.Deliveries() {
		if d.EventID == n.EventID {
			got = &d
		}
	}
	if got == nil || got.SigErr != "" || got.EventType != "order.produced" {
		t.Fatalf("delivery %+v", got)
	}
	want := map[string]string{"order_id": "hook-1", "card_number": o.CardNumber, "chip_uid": o.ChipUID,
		"valid_until": o.ValidUntil, "certificate_serial": o.CertSerial}
	for k, v := range want {
		if got.Body[k] != v || v == "" {
			t.Errorf("%s = %v, want %q", k, got.Body[k], v)
		}
	}
	sealed, _ := got.Body["sealed_pin_puk"].(string)
	if !strings.Contains(sealed, "AGE ENCRYPTED") {
		t.Errorf("sealed_pin_puk is not an age-sealed message: %.40q", sealed)
	}
	// The floor's figures are all on /metrics.
	// Every figure names the station, for a Prometheus that scrapes a fleet.
	metrics := get(t, "http://"+addr+"/metrics")
	name := `station="` + s.Config.Name + `"`
	for _, want := range []string{`station_orders{state="produced",` + name + `} 1`, `station_stage_seconds_count{lane="",stage="photo",` + name + `}`,
		`station_stage_seconds_count{lane="main",stage="encode",` + name + `}`, `station_stage_seconds_count{lane="main",stage="print",` + name + `}`,
		`station_cards_produced_total{lane="main",` + name + `} 1`, `station_spoiled_blanks_total{lane="main",` + name + `} 0`,
		`station_webhook_deliveries_total{result="delivered",` + name + `}`, `station_webhook_outbox{` + name + `,status="dead"} 0`,
		`station_express_deadlines_missed_total{` + name + `} 0`, `station_reader_up{lane="main",` + name + `} 1`, `station_printer_up{lane="main",` + name + `} 1`,
		`station_lane_state{lane="main",state="idle",` + name + `} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/dashboard.png from the browser test")

// needBrowser returns Debian's chromium, or skips when it is missing, unless
// STATION_REQUIRE_INTEGRATION=1 (CI) makes that a failure.
func needBrowser(t *testing.T) string {
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

func repoRoot(t *testing.T) string { return filepath.Dir(stationtest.RepoFile(t, "go.mod")) }

// exampleWithPhoto is examples/order.json with its id, photo, express flag
// and approval time replaced.
func example(t *testing.T, id, photo string, express bool) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "order.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	img := stationtest.Photo(t, photo)
	doc["id"], doc["photo"], doc["express"] = id, base64.StdEncoding.EncodeToString(img), express
	doc["approvals"] = []map[string]any{{"kind": "holder", "method": "bankid", "at": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)}}
	out, _ := json.Marshal(doc)
	return out
}

func submit(t *testing.T, base, token string, body []byte) {
	t.Helper()
	if status, _ := stationtest.Post(t, base+"/v1/orders", token, body); status != http.StatusCreated {
		t.Fatalf("submit: %d", status)
	}
}

func waitState(t *testing.T, s *Station, id string, want order.State) *order.Record {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		o, err := s.Store.Get(context.Background(), id)
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
func until(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))
}

func count(state string, n int) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`(document.querySelector('#count-%s .n') || {}).textContent === '%d'`, state, n))
}

func TestBrowserOperatorFlows(t *testing.T) {
	chromium := needBrowser(t)
	s, addr, supplierToken, logs := runStationLogged(t, func(c *Config) { c.Printer = "spool" })
	cfg := s.Config
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("station log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	stationtest.AddUser(t, s.Store, "quinn", queue.RoleQA, stationtest.Password)

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
			chromedp.SendKeys(chromedp.ID("password"), stationtest.Password),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("station-state")),
			until(`document.documentElement.dataset.live === 'connected'`))
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
	submit(t, base, supplierToken, example(t, "web-0001", "pass_london_001_03.jpg", false))
	do("order produced on the dashboard", count("produced", 1), until(`document.querySelector('#produced-today').textContent.trim() === '1'`))
	produced := waitState(t, s, "web-0001", order.Produced)

	// A photo the checks refuse appears in needs_fix, live as well.
	submit(t, base, supplierToken, example(t, "web-0002", "fail_zoom60cm_busy_bg.jpg", false))
	do("needs_fix on the dashboard", count("needs_fix", 1))

	// Pause with a message for the floor; an express order waits, with its
	// deadline on the dashboard.
	do("pause",
		chromedp.SendKeys(chromedp.ID("pause-message"), "Byte av färgband / ribbon change"),
		chromedp.Click(chromedp.ID("pause")),
		chromedp.WaitVisible(chromedp.ID("pause-banner")),
		chromedp.WaitVisible(chromedp.ID("resume")))
	if paused, msg := s.Pipeline.Paused(); !paused || msg != "Byte av färgband / ribbon change" {
		t.Fatalf("station paused=%v %q", paused, msg)
	}
	submit(t, base, supplierToken, example(t, "web-0003", "pass_london_004_03.jpg", true))
	do("express order waits while paused", count("ready", 1), chromedp.WaitVisible(chromedp.CSS("#express tbody tr")))
	if left := text("#express .left"); !strings.HasPrefix(left, "1:5") && !strings.HasPrefix(left, "2:00") {
		t.Fatalf("express time left %q, want about 1:59", left)
	}
	shot := screenshot("dashboard.png")
	if *updateDocs {
		if err := os.WriteFile(filepath.Join(repoRoot(t), "docs", "dashboard.png"), shot, 0o644); err != nil {
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
	overridden := waitState(t, s, "web-0002", order.Ready)
	if overridden.PhotoOverride != "pass" {
		t.Fatalf("override %q", overridden.PhotoOverride)
	}
	do("order page follows the order live", until(`document.querySelector('#order-state').dataset.state === 'ready'`),
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
	// Without the PIN the PIN-protected objects and the 9A key cannot be
	// checked: incomplete, never "passed".
	if got := text("#qa-result"); got != "No check failed, but some could not run" {
		t.Fatalf("QA result %q; checks: %s", got, text("#qa-checks"))
	}
	if !stationtest.HasAudit(t, s.Store, "operator:quinn qa_verify") {
		t.Fatalf("QA run not audited: %v", stationtest.Audit(t, s.Store))
	}
	// The QA role may not resume production: the button is not offered.
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#resume').length`)); err != nil || n != 0 {
		t.Fatalf("resume offered to QA: %d %v", n, err)
	}
	// The card leaves the reader before production resumes.
	if err := s.Lanes[0].Devices.Reader.(personalize.Ejector).Eject(context.Background()); err != nil {
		t.Fatal(err)
	}
	logout()

	// Resume in Swedish; both waiting orders are produced, live.
	login("eva")
	do("svenska", chromedp.Click(chromedp.ID("lang-sv")), chromedp.WaitVisible(chromedp.CSS("#lang-sv.on")), until(`document.querySelector('nav a[href="/ui/"]').textContent === 'Översikt'`))
	do("resume",
		chromedp.Click(chromedp.ID("resume")),
		chromedp.WaitVisible(chromedp.ID("pause")),
		count("produced", 3),
		until(`document.querySelectorAll('#express tbody tr').length === 0`))
	if got := text("#station-state .big"); got != "I drift" {
		t.Fatalf("station state label %q, want I drift", got)
	}
	express := waitState(t, s, "web-0003", order.Produced)
	if express.ProducedAt.After(express.Deadline) {
		t.Fatal("express order missed its deadline in the test")
	}

	// Nothing personal reached the log: not the holder's name, personnummer,
	// e-mail or phone, nor the operators' passwords.
	out := logs.String()
	if !strings.Contains(out, "web-0003") {
		t.Fatal("the log does not name orders at all; the check below would prove nothing")
	}
	for _, secret := range []string{"Łukasz", "Anna", "19850412", "anna@example.se", "+46701234567", stationtest.Password, "not the password"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

// Webhook URLs are checked at start-up: http(s) only, and no link-local or
// cloud metadata address unless the supplier's config opts in. Loopback and
// private networks stay allowed (a receiver on the same host or LAN).
func TestWebhookURLsAreCheckedAtStart(t *testing.T) {
	for _, tc := range []struct {
		url   string
		allow bool
		bad   string // what the error must say; "" = accepted
	}{
		{"https://erp.example.com/hooks/station", false, ""},
		{"http://127.0.0.1:9999/hook", false, ""},
		{"http://[::1]:9999/hook", false, ""},
		{"http://10.1.2.3/hook", false, ""},
		{"http://169.254.169.254/latest/meta-data/", true, ""},
		{"file:///etc/passwd", false, "must be an http or https URL"},
		{"gopher://erp.example.com:70/", false, "http or https"},
		{"ftp://erp.example.com/", false, "http or https"},
		{"erp.example.com/hook", false, "http or https"},
		{"http:///hook", false, "no host"},
		{"http://169.254.169.254/latest/meta-data/", false, "link-local"},
		{"http://169.254.170.2/v2/credentials", false, "link-local"},
		{"http://[fe80::1%25eth0]/", false, "link-local"},
		{"http://[::ffff:169.254.169.254]/", false, "link-local"},
		{"http://[fd00:ec2::254]/", false, "metadata"},
		{"http://metadata.google.internal/computeMetadata/v1/", false, "metadata"},
		{"http://METADATA.google.internal./", false, "metadata"},
		{"http://100.100.100.200/latest/meta-data/", false, "metadata"},
		{"http://0.0.0.0:9999/", false, "unspecified"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			cfg := Defaults()
			cfg.Suppliers = []webhook.Supplier{{Name: "acme", WebhookURL: tc.url, WebhookSecret: "s", AllowLinkLocalWebhook: tc.allow}}
			err := cfg.Validate()
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.bad) || !strings.Contains(err.Error(), "acme") {
				t.Fatalf("error %v: want one naming the supplier acme and saying %q", err, tc.bad)
			}
		})
	}
}

// The dashboard says when the station runs on development keys, and says
// nothing once real ones are configured.
func TestDashboardWarnsOfDevelopmentKeys(t *testing.T) {
	s, _ := testStation(t, nil)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	b := stationtest.NewBrowser(t, hs.URL)
	b.LoggedIn("eva", stationtest.Password)
	page := b.Get("/ui/?lang=en").Body
	if !strings.Contains(page, `id="dev-keys"`) || !strings.Contains(page, "development CA") || !strings.Contains(page, "development age key") {
		t.Fatal("the dashboard does not warn of the development CA and sealing key")
	}

	pki := t.TempDir()
	if _, err := personalize.New(personalize.Config{PKIDir: pki, Issuer: "Real CA AB", Certs: Defaults().CertProfile()}); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s, _ = testStation(t, func(c *Config) {
		c.CACert, c.CAKey, c.SealTo = filepath.Join(pki, "ca.pem"), filepath.Join(pki, "ca-key.pem"), id.Recipient().String()
	})
	hs = httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	b = stationtest.NewBrowser(t, hs.URL)
	b.LoggedIn("eva", stationtest.Password)
	if page := b.Get("/ui/").Body; strings.Contains(page, `id="dev-keys"`) {
		t.Fatal("the dashboard warns although real keys are configured")
	}
}

// Order ids are unique per supplier: a supplier using an id another one
// used gets its own order (not 409), finds it by that id, and never sees or
// touches the other supplier's. Operators see both, told apart.
func TestOrderIDsArePerSupplier(t *testing.T) {
	s, devToken := testStation(t, nil)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	bygg, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.AddToken(context.Background(), "bygg", bygg, []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	photo := stationtest.Photo(t, "pass_london_001_03.jpg")
	if status, out := stationtest.Post(t, hs.URL+"/v1/orders", devToken, stationtest.MustJSON(t, stationtest.ExampleOrder(t, "po-1", photo))); status != 201 {
		t.Fatalf("dev: %d %v", status, out)
	}
	theirs := stationtest.ExampleOrder(t, "po-1", photo)
	theirs["express"] = true
	status, out := stationtest.Post(t, hs.URL+"/v1/orders", bygg, stationtest.MustJSON(t, theirs))
	if status != http.StatusCreated || out["id"] != "po-1" || out["express"] != true {
		t.Fatalf("bygg with dev's id: %d %v, want 201 for its own order", status, out)
	}
	if status, _ := stationtest.Post(t, hs.URL+"/v1/orders", bygg, stationtest.MustJSON(t, theirs)); status != http.StatusOK {
		t.Fatalf("bygg resubmits: %d, want 200", status)
	}
	for token, express := range map[string]bool{devToken: false, bygg: true} {
		st, o, _ := stationtest.Call(t, "GET", hs.URL+"/v1/orders/po-1", token, nil)
		if st != http.StatusOK || o["id"] != "po-1" || o["express"] != express {
			t.Fatalf("GET po-1 (express %v): %d %v", express, st, o)
		}
		st, list, _ := stationtest.Call(t, "GET", hs.URL+"/v1/orders", token, nil)
		if orders, _ := list["orders"].([]any); st != http.StatusOK || len(orders) != 1 || orders[0].(map[string]any)["id"] != "po-1" {
			t.Fatalf("list: %d %v", st, list)
		}
	}
	if st, o, _ := stationtest.Call(t, "POST", hs.URL+"/v1/orders/po-1/cancel", bygg, nil); st != http.StatusOK || o["state"] != "cancelled" {
		t.Fatalf("bygg cancels its po-1: %d %v", st, o)
	}
	if st, o, _ := stationtest.Call(t, "GET", hs.URL+"/v1/orders/po-1", devToken, nil); st != http.StatusOK || o["state"] == "cancelled" {
		t.Fatalf("dev's po-1 after bygg's cancel: %d %v", st, o)
	}
	// The operator page lists both, each with its supplier.
	b := stationtest.NewBrowser(t, hs.URL)
	b.LoggedIn("eva", stationtest.Password)
	page := b.Get("/ui/orders?q=po-1").Body
	if strings.Count(page, `href="/ui/orders/po-1`) != 2 || !strings.Contains(page, "bygg") || !strings.Contains(page, "dev") {
		t.Fatalf("the operator list does not show both po-1 with their suppliers:\n%s", page)
	}
}
