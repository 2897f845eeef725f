package station

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/queue"
)

// The OpenAPI document names exactly the routes the router serves (the
// operator page under /ui/ is HTML, not API, and is left out).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s, hs := opStation(t, nil)
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
	resp, err := http.Get(hs.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("document: %v, openapi %q", err, doc.OpenAPI)
	}
	// Every reference in the document resolves.
	var whole any
	if err := json.Unmarshal(openAPI, &whole); err != nil {
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

func opAPI(t *testing.T, method, url, token string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	return send(t, req)
}

func opToken(t *testing.T, s *Server, supplier string, scopes ...string) string {
	t.Helper()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.AddToken(context.Background(), supplier, tok, scopes); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOperatorAPIScopes(t *testing.T) {
	s, hs := opStation(t, nil)
	orders := opToken(t, s, "acme", "orders")
	operator := opToken(t, s, "floor", "operator")
	both := opToken(t, s, "ops-and-orders", "orders", "operator")
	opNeedsFix(t, s, "nf-1")

	if st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/pause", orders, nil); st != http.StatusForbidden || !strings.Contains(opErrMessage(body), "--scope operator") {
		t.Fatalf("orders token on /v1/ops: %d %v", st, body)
	}
	if paused, _ := s.pipeline.Paused(); paused {
		t.Fatal("an orders-scope token paused the station")
	}
	if st, _, _ := opAPI(t, "GET", hs.URL+"/v1/orders", operator, nil); st != http.StatusForbidden {
		t.Fatalf("operator token on the supplier API: %d, want 403", st)
	}
	if st, _, _ := opAPI(t, "POST", hs.URL+"/v1/ops/pause", "", nil); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	if st, _, _ := opAPI(t, "GET", hs.URL+"/v1/orders", both, nil); st != http.StatusOK {
		t.Fatalf("two-scope token on the supplier API: %d", st)
	}
	if !opHasAudit(t, s, "token:acme forbidden") {
		t.Fatalf("refusal not audited: %v", opAudit(t, s))
	}

	st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/pause", operator, map[string]string{"message": "Card stock low"})
	if st != http.StatusOK || body["paused"] != true || body["message"] != "Card stock low" {
		t.Fatalf("pause: %d %v", st, body)
	}
	if st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/resume", operator, nil); st != http.StatusOK || body["paused"] != false {
		t.Fatalf("resume: %d %v", st, body)
	}
	if !opHasAudit(t, s, "api:floor pause") || !opHasAudit(t, s, "api:floor resume") {
		t.Fatalf("audit: %v", opAudit(t, s))
	}

	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"unknown verdict", map[string]string{"verdict": "maybe", "reason": "x"}, "verdict"},
		{"no reason", map[string]string{"verdict": "pass"}, "reason"},
		{"fail without code", map[string]string{"verdict": "fail", "reason": "x"}, "code"},
		{"fail with unknown code", map[string]string{"verdict": "fail", "reason": "x", "code": "ugly"}, "code"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, tc.body)
			if st != http.StatusUnprocessableEntity || !strings.Contains(opJSON(body), `"path":"`+tc.field+`"`) {
				t.Fatalf("%d %v, want 422 naming %s", st, body, tc.field)
			}
		})
	}
	if st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, map[string]any{"verdict": "pass", "reason": "x", "extra": 1}); st != http.StatusUnprocessableEntity || !strings.Contains(opJSON(body), `"path":"extra"`) {
		t.Fatalf("unknown field: %d %v, want 422 naming extra", st, body)
	}
	st, body, _ = opAPI(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, map[string]string{"verdict": "pass", "reason": "checked by hand"})
	if st != http.StatusOK || body["state"] != "queued" {
		t.Fatalf("pass verdict: %d %v", st, body)
	}
	st, body, _ = opAPI(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, map[string]string{"verdict": "fail", "reason": "cap", "code": "head_cut_off"})
	if st != http.StatusOK || body["state"] != "needs_fix" || !strings.Contains(opJSON(body), "head_cut_off") {
		t.Fatalf("fail verdict: %d %v", st, body)
	}
	events, _ := s.store.Events(context.Background(), "nf-1")
	if a := events[len(events)-1].Actor; a != "api:floor" {
		t.Fatalf("verdict recorded as %q", a)
	}
	if st, _, _ := opAPI(t, "POST", hs.URL+"/v1/ops/orders/nope/photo-verdict", operator, map[string]string{"verdict": "pass", "reason": "x"}); st != http.StatusNotFound {
		t.Fatalf("unknown order: %d", st)
	}
}

func opErrMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func opJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	s, hs := opStation(t, func(c *Config) { c.RatePerSecond, c.RateBurst = 0.5, 3 })
	tok := opToken(t, s, "acme", "orders")
	other := opToken(t, s, "other", "orders")
	for i := 0; i < 3; i++ {
		if st, _, _ := opAPI(t, "GET", hs.URL+"/v1/orders", tok, nil); st != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, st)
		}
	}
	st, body, h := opAPI(t, "GET", hs.URL+"/v1/orders", tok, nil)
	if st != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d", st)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q: want 1-2 s at 0.5 requests/s", h.Get("Retry-After"))
	}
	if opErrMessage(body) == "" {
		t.Fatal("429 without an error message")
	}
	if st, _, _ := opAPI(t, "GET", hs.URL+"/v1/orders", other, nil); st != http.StatusOK {
		t.Fatalf("another supplier was limited too: %d", st)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1.
func opSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
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

// runStation runs a real station (pipeline, deliverer, HTTP server) until
// the test ends and returns its address.
func opRunStation(t *testing.T, cfg Config) (*Server, string, *opLog) {
	t.Helper()
	logs := &opLog{}
	s, err := Open(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ctx, func(a string) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		s.Close()
	})
	select {
	case a := <-addr:
		return s, a, logs
	case err := <-done:
		t.Fatalf("station did not start: %v", err)
	}
	return nil, "", nil
}

// opLog keeps what a running station logged, for privacy checks.
type opLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *opLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *opLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := opSelfSigned(t, dir)
	cfg := Defaults()
	cfg.DataDir, cfg.Listen, cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "data"), "127.0.0.1:0", certFile, keyFile
	s, addr, _ := opRunStation(t, cfg)
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
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := &opBrowser{t: t, base: "https://" + addr, c: client}
	r := b.post("/ui/login", url.Values{"csrf": {b.csrf("/ui/login")}, "user": {"eva"}, "password": {opPassword}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("login over TLS: %d", r.status)
	}
	var secure bool
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, sessionCookie+"=") {
			secure = strings.Contains(line, "; Secure")
		}
	}
	if !secure {
		t.Fatalf("session cookie without Secure over TLS: %v", r.header.Values("Set-Cookie"))
	}
}

// Stopping the station ends open event streams, so a browser left on the
// dashboard does not hold the shutdown.
func TestStopEndsEventStreams(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	s, err := Open(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ctx, func(a string) { addr <- a }) }()
	base := "http://" + <-addr
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := newOpBrowser(t, base)
	b.loggedIn("eva", opPassword)
	// Shorter than the server's 10 s shutdown grace: a stream the server
	// does not end itself fails this read with a deadline error.
	rctx, rcancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, base+"/ui/events", nil)
	resp, err := b.c.Do(req)
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

// opPrinting puts an order in printing with a card and chip bound, the way
// the device worker leaves one whose print cannot go on.
func opPrinting(t *testing.T, s *Server, id string) *queue.Order {
	t.Helper()
	ctx := context.Background()
	_, _, err := s.store.Submit(ctx, queue.NewOrder{ID: id, Supplier: "dev", BodyHash: "h-" + id,
		Doc: []byte(`{"holder":{"first_name":"Anna","last_name":"Svensson","print_name":"Anna Svensson"}}`), CardType: "id06",
		Approvals: []queue.Approval{{Kind: "holder", Method: "bankid", At: time.Now()}}, Photo: []byte("jpeg")}, "supplier:dev")
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.store.Claim(ctx, "w", time.Minute, map[queue.State]queue.State{queue.Queued: queue.Imaging})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.PhotoPassed(ctx, j, nil, "ok"); err != nil {
		t.Fatal(err)
	}
	if j, err = s.store.Claim(ctx, "w", time.Minute, map[queue.State]queue.State{queue.Ready: queue.Encoding}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.AllocateCard(ctx, j, "BB"); err != nil {
		t.Fatal(err)
	}
	if err := s.store.RecordChip(ctx, j, "04A1B2C3"); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Encoded(ctx, j, "1", "2031-01-01", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	o, _ := s.store.Get(ctx, id)
	return o
}

// An order stuck at the printer (or reader) cannot be cancelled, but an
// operator can stop it from the page or the operator API: the blank's card
// number is retired as spoiled, the order fails with who and why.
func TestOperatorStopsAnOrderAtTheDevices(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	opUser(t, s, "quinn", queue.RoleQA, opPassword)
	ctx := context.Background()

	// From the page.
	o := opPrinting(t, s, "stuck-1")
	b := newOpBrowser(t, hs.URL)
	token := b.loggedIn("eva", opPassword)
	page := b.get("/ui/orders/stuck-1").body
	if !strings.Contains(page, `id="spoil"`) || strings.Contains(page, `id="cancel"`) {
		t.Fatal("the page of a printing order must offer stop-and-spoil, not cancel")
	}
	if r := b.post("/ui/orders/stuck-1/spoil", url.Values{"csrf": {token}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("stop without a reason: %d, want 422", r.status)
	}
	qa := newOpBrowser(t, hs.URL)
	if r := qa.post("/ui/orders/stuck-1/spoil", url.Values{"csrf": {qa.loggedIn("quinn", opPassword)}, "reason": {"x"}}); r.status != http.StatusForbidden {
		t.Fatalf("QA stopped an order: %d", r.status)
	}
	if r := b.post("/ui/orders/stuck-1/spoil", url.Values{"csrf": {token}, "reason": {"printer jams on this card"}}); r.status != http.StatusSeeOther {
		t.Fatalf("stop: %d %s", r.status, r.body)
	}
	got, _ := s.store.Get(ctx, "stuck-1")
	numbers, _ := s.store.CardNumbers(ctx, "stuck-1")
	if got.State != queue.Failed || numbers[o.CardNumber] != "spoiled" {
		t.Fatalf("after stop: %s, card %s %q", got.State, o.CardNumber, numbers[o.CardNumber])
	}
	events, _ := s.store.Events(ctx, "stuck-1")
	if last := events[len(events)-1]; last.Actor != "operator:eva" || !strings.Contains(last.Note, "printer jams on this card") {
		t.Fatalf("last event %+v", last)
	}
	if page := b.get("/ui/orders/stuck-1").body; !strings.Contains(page, `id="retry"`) {
		t.Fatal("a stopped order offers no retry")
	}

	// From the operator API.
	operator := opToken(t, s, "floor", "operator")
	o = opPrinting(t, s, "stuck-2")
	if st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/orders/stuck-2/spoil", operator, map[string]string{}); st != http.StatusUnprocessableEntity || !strings.Contains(opJSON(body), `"path":"reason"`) {
		t.Fatalf("no reason: %d %v", st, body)
	}
	st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/orders/stuck-2/spoil", operator, map[string]string{"reason": "encoder keeps failing"})
	if st != http.StatusOK || body["state"] != "failed" || body["card_number"] != "" {
		t.Fatalf("stop: %d %v", st, body)
	}
	if numbers, _ := s.store.CardNumbers(ctx, "stuck-2"); numbers[o.CardNumber] != "spoiled" {
		t.Fatalf("card %s: %q", o.CardNumber, numbers[o.CardNumber])
	}
	events, _ = s.store.Events(ctx, "stuck-2")
	if a := events[len(events)-1].Actor; a != "api:floor" {
		t.Fatalf("stop recorded as %q", a)
	}
	opNeedsFix(t, s, "nf-1")
	if st, body, _ := opAPI(t, "POST", hs.URL+"/v1/ops/orders/nf-1/spoil", operator, map[string]string{"reason": "x"}); st != http.StatusConflict {
		t.Fatalf("stop of a needs_fix order: %d %v, want 409", st, body)
	}
	if st, _, _ := opAPI(t, "POST", hs.URL+"/v1/ops/orders/nope/spoil", operator, map[string]string{"reason": "x"}); st != http.StatusNotFound {
		t.Fatalf("unknown order: %d", st)
	}
}
