package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/lane"
	"id06/metrics"
	"id06/order"
	"id06/personalize"
	"id06/pipeline"
	"id06/printer"
	"id06/queue"
	"id06/queue/queuetest"
	"id06/revocation"
	"id06/station/stationtest"
	"id06/webhook"
)

// testStation is the operator page of a station on real parts (SQLite on
// disk, the simulated reader, a development PKI, the spool printer) whose
// pipeline is not started.
type testStation struct {
	*UI
	store    *queue.Store
	pipeline *pipeline.Pipeline
	dbPath   string
}

func testPage(t testing.TB, suppliers []webhook.Supplier) (*testStation, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &testStation{dbPath: filepath.Join(dir, "station.db")}
	var err error
	if s.store, err = queue.Open(s.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	chip, err := personalize.New(personalize.Config{PKIDir: filepath.Join(dir, "pki"), Issuer: "ID06 Card Supplier AB",
		Certs: personalize.CertProfile{PKIBaseURL: "http://127.0.0.1:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	lc := lane.Config{Name: lane.Main, Reader: "sim", Printer: "spool", Transport: "manual"}
	dev, err := lane.Open(lc, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	m := metrics.New(s.store, nil, func() []metrics.Lane { return nil })
	s.pipeline = pipeline.New(s.store, pipeline.Config{}, log, nil, chip, []*lane.Lane{lane.New(lc, dev)}, printer.DefaultTemplate(), m)
	s.UI = New(s.store, s.pipeline, revocation.New(s.store, chip, log), webhook.New(s.store, suppliers, log, m), Devices{Reader: dev.Reader, Chip: chip}, Keys{DevelopmentCA: true, DevelopmentSeal: true}, log)
	r := chi.NewRouter()
	r.Route("/ui", s.Routes)
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	return s, hs
}

func TestLoginGivesNoHintWhichPartWasWrong(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	tests := []struct{ name, user, password string }{
		{"wrong password", "eva", "wrong password!"},
		{"unknown user", "nobody", stationtest.Password},
		{"empty", "", ""},
	}
	var bodies []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := stationtest.NewBrowser(t, hs.URL)
			r := b.Login(tc.user, tc.password)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", r.Status)
			}
			if !strings.Contains(r.Body, "Wrong user name or password.") {
				t.Fatalf("body lacks the generic message")
			}
			if strings.Contains(r.Body, "station_session") || b.Get("/ui/").Status != http.StatusSeeOther {
				t.Fatal("a failed login opened a session")
			}
			msg := regexp.MustCompile(`id="login-error">([^<]*)<`).FindStringSubmatch(r.Body)
			bodies = append(bodies, msg[1])
		})
	}
	for _, m := range bodies[1:] {
		if m != bodies[0] {
			t.Fatalf("messages differ: %q vs %q", bodies[0], m)
		}
	}
	if !stationtest.HasAudit(t, s.store, "anonymous login_failed") {
		t.Fatalf("failed logins not audited: %v", stationtest.Audit(t, s.store))
	}
}

func TestLoginThrottled(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	s.throttle.now = func() time.Time { return now }
	b := stationtest.NewBrowser(t, hs.URL)
	for i := 0; i < s.throttle.free; i++ {
		if r := b.Login("eva", "guess number "+string(rune('a'+i))); r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.Status)
		}
	}
	r := b.Login("eva", stationtest.Password)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("right password while throttled: %d Retry-After=%q, want 429", r.Status, r.Header.Get("Retry-After"))
	}
	if !strings.Contains(r.Body, "Too many failed logins") {
		t.Fatal("throttled answer does not say why")
	}
	// Someone else behind the same address is not held up by eva's lock.
	stationtest.AddUser(t, s.store, "olle", queue.RoleQA, stationtest.Password)
	if r := stationtest.NewBrowser(t, hs.URL).Login("olle", stationtest.Password); r.Status != http.StatusSeeOther {
		t.Fatalf("olle: %d", r.Status)
	}
	now = now.Add(s.throttle.base + time.Second)
	if r := b.Login("eva", stationtest.Password); r.Status != http.StatusSeeOther {
		t.Fatalf("after the wait: %d, want 303", r.Status)
	}
	if !stationtest.HasAudit(t, s.store, "anonymous login_throttled") || !stationtest.HasAudit(t, s.store, "operator:eva login") {
		t.Fatalf("audit: %v", stationtest.Audit(t, s.store))
	}
}

// Throttling keys on (address, user): guessing from one address does not
// lock out the others behind it (an office NAT), and a stranger guessing a
// name does not lock its owner out; the guesser waits longer each time.
func TestLoginThrottleNeitherLocksOutTheAddressNorTheUser(t *testing.T) {
	s, _ := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	stationtest.AddUser(t, s.store, "olle", queue.RoleOperator, stationtest.Password)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	s.throttle.now = func() time.Time { return now }
	ctx := context.Background()
	const office, stranger = "192.0.2.10", "203.0.113.9"

	// A colleague in the office mistypes olle's password over and over.
	for i := 0; i < 3*s.throttle.free; i++ {
		s.login(ctx, "olle", "not the password", office)
	}
	if _, _, err := s.login(ctx, "eva", stationtest.Password, office); err != nil {
		t.Fatalf("eva behind the same address as the guesser: %v", err)
	}

	// A stranger guesses eva's password; the wait grows with each failure.
	var waits []time.Duration
	for i := 0; i < s.throttle.free+4; i++ {
		_, _, err := s.login(ctx, "eva", "guess "+string(rune('a'+i)), stranger)
		var th *throttled
		if errors.As(err, &th) {
			t.Fatalf("attempt %d throttled although the last wait was over", i)
		}
		if w := s.throttle.wait(throttleKey(stranger, "eva")); w > 0 {
			waits = append(waits, w)
			now = now.Add(w)
		}
	}
	if len(waits) < 4 || waits[1] != 2*waits[0] || waits[3] != 2*waits[2] {
		t.Fatalf("waits %v: want doubling after %d free failures", waits, s.throttle.free)
	}
	if _, _, err := s.login(ctx, "eva", "one more guess", stranger); err == nil || !errors.Is(err, errBadLogin) {
		t.Fatalf("after the wait the stranger gets an answer again: %v", err)
	}
	var th *throttled
	if _, _, err := s.login(ctx, "eva", stationtest.Password, stranger); !errors.As(err, &th) {
		t.Fatalf("the stranger's next try at once: %v, want throttled", err)
	}
	// Meanwhile eva, at her own address, is not locked out.
	if _, _, err := s.login(ctx, "eva", stationtest.Password, office); err != nil {
		t.Fatalf("eva from her own address: %v", err)
	}
}

// A failed login records the typed user name only when it names an
// account: otherwise it may be a password typed into the wrong box.
func TestFailedLoginKeepsUnknownNamesOutOfTheAudit(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	const typo = "Tr0ub4dor&3-in-the-user-box"
	b := stationtest.NewBrowser(t, hs.URL)
	for i := 0; i <= s.throttle.free; i++ { // the last one is throttled
		b.Login(typo, "whatever")
	}
	b.Login("eva", "wrong password")
	log, err := s.store.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var evaFailed, throttled bool
	for _, e := range log {
		if strings.Contains(e.Detail, typo) || strings.Contains(e.Actor, typo) {
			t.Fatalf("the audit keeps a typed name that is no account: %+v", e)
		}
		evaFailed = evaFailed || e.Action == "login_failed" && e.Detail == "user eva"
		throttled = throttled || e.Action == "login_throttled"
	}
	if !evaFailed || !throttled {
		t.Fatalf("audit lacks eva's failure or the throttled attempt: %+v", log)
	}
}

func TestSessionCookie(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	b := stationtest.NewBrowser(t, hs.URL)
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/ui/login", strings.NewReader(url.Values{
		"csrf": {b.CSRF("/ui/login")}, "user": {"eva"}, "password": {stationtest.Password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui/" || sess.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, not Secure over plain HTTP", sess)
	}
	// The database keeps only a hash of the cookie.
	if _, err := s.store.LookupSession(context.Background(), sess.Value); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(s.dbPath)
	if strings.Contains(string(raw), sess.Value) {
		t.Fatal("the session cookie value is stored in the database")
	}
}

func TestFormsNeedTheSessionCSRFToken(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	b := stationtest.NewBrowser(t, hs.URL)
	token := b.LoggedIn("eva", stationtest.Password)
	other := stationtest.NewBrowser(t, hs.URL)
	stationtest.AddUser(t, s.store, "olle", queue.RoleOperator, stationtest.Password)
	otherToken := other.LoggedIn("olle", stationtest.Password)
	tests := []struct {
		name string
		form url.Values
	}{
		{"missing", url.Values{"message": {"x"}}},
		{"forged", url.Values{"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "message": {"x"}}},
		{"another session's", url.Values{"csrf": {otherToken}, "message": {"x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.Post("/ui/pause", tc.form)
			if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "nothing was changed") {
				t.Fatalf("status %d, want 403 with an explanation", r.Status)
			}
			if paused, _ := s.pipeline.Paused(); paused {
				t.Fatal("the station paused on a request without a valid CSRF token")
			}
		})
	}
	if !stationtest.HasAudit(t, s.store, "operator:eva csrf_refused") {
		t.Fatalf("refusals not audited: %v", stationtest.Audit(t, s.store))
	}
	// Without the login page's cookie, a login form is refused too.
	if r := stationtest.NewBrowser(t, hs.URL).Post("/ui/login", url.Values{"csrf": {"x"}, "user": {"eva"}, "password": {stationtest.Password}}); r.Status != http.StatusForbidden {
		t.Fatalf("login without its CSRF cookie: %d", r.Status)
	}
	r := b.Post("/ui/pause", url.Values{"csrf": {token}, "message": {"Ribbon change"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("pause with the token: %d", r.Status)
	}
	if paused, msg := s.pipeline.Paused(); !paused || msg != "Ribbon change" {
		t.Fatalf("paused=%v %q", paused, msg)
	}
	if !strings.Contains(b.Get("/ui/").Body, "Ribbon change") {
		t.Fatal("the dashboard does not show the pause message")
	}
	if r := b.Post("/ui/resume", url.Values{"csrf": {token}}); r.Status != http.StatusSeeOther {
		t.Fatalf("resume: %d", r.Status)
	}
	if !stationtest.HasAudit(t, s.store, "operator:eva pause") || !stationtest.HasAudit(t, s.store, "operator:eva resume") {
		t.Fatalf("audit: %v", stationtest.Audit(t, s.store))
	}
}

func TestExpiredSessionAppliesNothing(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	ctx := context.Background()
	if _, err := s.store.CreateSession(ctx, "expired-cookie", "eva", "expired-csrf", -time.Minute); err != nil {
		t.Fatal(err)
	}
	b := stationtest.NewBrowser(t, hs.URL)
	u, _ := url.Parse(hs.URL + "/ui/")
	b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "expired-cookie", Path: "/ui/"}})
	r := b.Get("/ui/orders")
	if r.Status != http.StatusSeeOther || !strings.Contains(r.Location, "why=expired") || !strings.Contains(r.Location, "next=%2Fui%2Forders") {
		t.Fatalf("GET with an expired session: %d %s", r.Status, r.Location)
	}
	b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "expired-cookie", Path: "/ui/"}})
	r = b.Post("/ui/pause", url.Values{"csrf": {"expired-csrf"}})
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/ui/login") {
		t.Fatalf("POST with an expired session: %d %s", r.Status, r.Location)
	}
	if paused, _ := s.pipeline.Paused(); paused {
		t.Fatal("an expired session paused the station")
	}
	if login := b.Get(strings.TrimPrefix(r.Location, "")); !strings.Contains(login.Body, "session has expired") {
		t.Fatal("the login page does not say the session expired")
	}
	if !stationtest.HasAudit(t, s.store, "anonymous session_expired") {
		t.Fatalf("audit: %v", stationtest.Audit(t, s.store))
	}
}

func TestRolesAreEnforcedOnTheServer(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	stationtest.AddUser(t, s.store, "quinn", queue.RoleQA, stationtest.Password)
	stationtest.AddUser(t, s.store, "ada", queue.RoleAdmin, stationtest.Password)
	tests := []struct {
		user, method, path string
		want               int
	}{
		{"quinn", http.MethodPost, "/ui/pause", http.StatusForbidden},
		{"quinn", http.MethodPost, "/ui/orders/x/cancel", http.StatusForbidden},
		{"quinn", http.MethodPost, "/ui/notices/1/redeliver", http.StatusForbidden},
		{"quinn", http.MethodGet, "/ui/audit", http.StatusForbidden},
		{"eva", http.MethodPost, "/ui/qa/verify", http.StatusForbidden},
		{"eva", http.MethodGet, "/ui/audit", http.StatusForbidden},
		{"ada", http.MethodGet, "/ui/audit", http.StatusOK},
		{"ada", http.MethodPost, "/ui/pause", http.StatusSeeOther},
	}
	browsers := map[string]*stationtest.Browser{}
	tokens := map[string]string{}
	for _, u := range []string{"eva", "quinn", "ada"} {
		browsers[u] = stationtest.NewBrowser(t, hs.URL)
		tokens[u] = browsers[u].LoggedIn(u, stationtest.Password)
	}
	for _, tc := range tests {
		t.Run(tc.user+" "+tc.method+" "+tc.path, func(t *testing.T) {
			b := browsers[tc.user]
			var r stationtest.Response
			if tc.method == http.MethodGet {
				r = b.Get(tc.path)
			} else {
				r = b.Post(tc.path, url.Values{"csrf": {tokens[tc.user]}, "reason": {"test"}})
			}
			if r.Status != tc.want {
				t.Fatalf("status %d, want %d", r.Status, tc.want)
			}
		})
	}
	if !stationtest.HasAudit(t, s.store, "operator:quinn forbidden") || !stationtest.HasAudit(t, s.store, "operator:eva forbidden") {
		t.Fatalf("refusals not audited: %v", stationtest.Audit(t, s.store))
	}
	if paused, msg := s.pipeline.Paused(); !paused || !strings.Contains(msg, "ada") {
		t.Fatalf("only the admin's pause should have applied: paused=%v %q", paused, msg)
	}
}

func TestOrderActionsFromThePage(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	queuetest.NeedsFix(t, s.store, "nf-1")
	b := stationtest.NewBrowser(t, hs.URL)
	token := b.LoggedIn("eva", stationtest.Password)

	list := b.Get("/ui/needs-fix").Body
	if !strings.Contains(list, "nf-1") || !strings.Contains(list, "The photo is blurry.") {
		t.Fatal("needs_fix list lacks the order or its reason")
	}
	if sv := b.Get("/ui/needs-fix?lang=sv").Body; !strings.Contains(sv, "Fotot är suddigt.") || !strings.Contains(sv, "Att åtgärda") {
		t.Fatal("Swedish page lacks Swedish labels or reasons")
	}
	b.Get("/ui/?lang=en")
	if r := b.Get("/ui/orders?q=Anna"); !strings.Contains(r.Body, "nf-1") {
		t.Fatal("search by holder name does not find the order")
	}
	if r := b.Post("/ui/orders/nf-1/override", url.Values{"csrf": {token}, "verdict": {"pass"}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("override without a reason: %d, want 422", r.Status)
	}
	r := b.Post("/ui/orders/nf-1/override", url.Values{"csrf": {token}, "verdict": {"pass"}, "reason": {"Glasses reflect, face clearly visible"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("override: %d %s", r.Status, r.Body)
	}
	o, _ := s.store.Get(context.Background(), "nf-1")
	if o.State != order.Queued || o.PhotoOverride != "pass" {
		t.Fatalf("after override: %s %q", o.State, o.PhotoOverride)
	}
	events, _ := s.store.Events(context.Background(), "nf-1")
	last := events[len(events)-1]
	if last.Actor != "operator:eva" || !strings.Contains(last.Note, "Glasses reflect") {
		t.Fatalf("last event %+v", last)
	}
	if page := b.Get("/ui/orders/nf-1").Body; !strings.Contains(page, "operator:eva") {
		t.Fatal("the order page timeline does not show who acted")
	}
	// Retrying an order that has not failed is refused with the reason.
	r = b.Post("/ui/orders/nf-1/retry", url.Values{"csrf": {token}, "reason": {"again"}})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "the order is queued") {
		t.Fatalf("retry of a queued order: %d", r.Status)
	}
	if r := b.Post("/ui/orders/nf-1/cancel", url.Values{"csrf": {token}, "reason": {"holder left the company"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("cancel: %d", r.Status)
	}
	notices, _ := s.store.OrderNotices(context.Background(), "nf-1")
	if n := notices[len(notices)-1]; n.Type != "order.cancelled" {
		t.Fatalf("last notice %s, want order.cancelled", n.Type)
	}
	if r := b.Get("/ui/orders/nope"); r.Status != http.StatusNotFound {
		t.Fatalf("unknown order: %d", r.Status)
	}
}

func TestEventStreamAnnouncesChanges(t *testing.T) {
	s, hs := testPage(t, nil)
	s.poll = 50 * time.Millisecond
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	b := stationtest.NewBrowser(t, hs.URL)
	b.LoggedIn("eva", stationtest.Password)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func(version string) (*http.Response, func() string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/ui/events?v="+url.QueryEscape(version), nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var got strings.Builder
		buf := make([]byte, 4096)
		// next reads until the stream has said something more.
		return resp, func() string {
			n, err := resp.Body.Read(buf)
			if err != nil {
				t.Fatalf("stream ended: %v (got %q)", err, got.String())
			}
			got.Write(buf[:n])
			return got.String()
		}
	}
	// A page that is up to date gets no refresh at once …
	_, next := open(s.liveVersion(ctx))
	if first := next(); strings.Contains(first, "event: change") {
		t.Fatalf("an up-to-date page was told to refresh: %q", first)
	}
	// … but a change made behind its back (the pipeline, the CLI) arrives.
	queuetest.NeedsFix(t, s.store, "nf-2")
	for !strings.Contains(next(), "event: change") {
	}
	// A page rendered before that change learns of it when its stream opens.
	stale := "a version from before nf-2"
	if _, next := open(stale); !strings.Contains(next(), "event: change") {
		t.Fatal("a page that missed a change was not told to refresh")
	}
	// Without a session the stream is refused plainly, not redirected.
	anon := stationtest.NewBrowser(t, hs.URL)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/ui/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	if r := anon.Do(req); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous events: %d", r.Status)
	}
}

// After logging in, the station follows ?next= only to a page of its own
// operator page; anything a browser could take to another host, or that
// climbs out of /ui/, goes to the dashboard instead.
func TestLoginNextStaysOnTheOperatorPage(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	tests := []struct{ next, want string }{
		{"/ui/orders?state=failed", "/ui/orders?state=failed"},
		{"/ui/orders/e2e-001", "/ui/orders/e2e-001"},
		{"/ui/", "/ui/"},
		{"", "/ui/"},
		{`/ui/../\evil.example/`, "/ui/"},
		{`/ui/..\..\evil.example`, "/ui/"},
		{`/\evil.example/`, "/ui/"},
		{`/ui/\evil.example`, "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/ui//evil.example/", "/ui/"},
		{"https://evil.example/ui/", "/ui/"},
		{"http:/ui/", "/ui/"},
		{"javascript:alert(1)", "/ui/"},
		{"/ui/%2e%2e/%5cevil.example/", "/ui/"},
		{"/ui/%2E%2E%2F%2F%5Cevil.example", "/ui/"},
		{"/ui/%5c%5cevil.example", "/ui/"},
		{"/ui/..", "/ui/"},
		{"/uix/", "/ui/"},
		{"/ui/?x=/../../\\evil.example", "/ui/"},
		{"/ui/\t/evil.example", "/ui/"},
		{"/ui/\r\nSet-Cookie: x=1", "/ui/"},
		{"ui/orders", "/ui/"},
	}
	for _, tc := range tests {
		t.Run(tc.next, func(t *testing.T) {
			b := stationtest.NewBrowser(t, hs.URL)
			// The login page copies ?next= into its form; the form is what is posted.
			page := b.Get("/ui/login?next=" + url.QueryEscape(tc.next))
			m := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(page.Body)
			if m == nil {
				t.Fatal("no next field on the login page")
			}
			r := b.Post("/ui/login", url.Values{"csrf": {b.CSRF("/ui/login")}, "user": {"eva"}, "password": {stationtest.Password}, "next": {tc.next}})
			if r.Status != http.StatusSeeOther || r.Location != tc.want {
				t.Fatalf("next %q: %d Location %q, want 303 %q", tc.next, r.Status, r.Location, tc.want)
			}
		})
	}
}
func TestShipmentsAndReproduction(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	stationtest.AddUser(t, s.store, "quinn", queue.RoleQA, stationtest.Password)
	a1 := queuetest.Produced(t, s.store, "ord-01", false, "Storgatan 1")
	queuetest.Produced(t, s.store, "ord-02", false, "Storgatan 1")
	queuetest.Produced(t, s.store, "ord-03", false, "Kungsgatan 9")
	queuetest.Produced(t, s.store, "ord-04", true, "Storgatan 1")
	ctx := context.Background()

	qa := stationtest.NewBrowser(t, hs.URL)
	if r := qa.Post("/ui/shipments", url.Values{"csrf": {qa.LoggedIn("quinn", stationtest.Password)}}); r.Status != http.StatusForbidden {
		t.Fatalf("QA packing: %d", r.Status)
	}
	b := stationtest.NewBrowser(t, hs.URL)
	token := b.LoggedIn("eva", stationtest.Password)

	// A card spoiled after production gets a new number and blank.
	if r := b.Post("/ui/orders/ord-01/reproduce", url.Values{"csrf": {token}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("reproduce without a reason: %d", r.Status)
	}
	if r := b.Post("/ui/orders/ord-01/reproduce", url.Values{"csrf": {token}, "reason": {"print smudged"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("reproduce: %d", r.Status)
	}
	o, _ := s.store.Get(ctx, "ord-01")
	if o.State != order.Ready || o.CardNumber != "" {
		t.Fatalf("after reproduce: %s %q", o.State, o.CardNumber)
	}
	if numbers, _ := s.store.CardNumbers(ctx, "ord-01"); numbers[a1.CardNumber] != "spoiled" {
		t.Fatalf("old card %s: %q", a1.CardNumber, numbers[a1.CardNumber])
	}
	if n, _ := s.store.SpoiledCount(ctx, time.Now().Add(-time.Hour)); n != 1 {
		t.Fatalf("spoiled blanks today = %d", n)
	}

	if r := b.Post("/ui/shipments", url.Values{"csrf": {token}}); r.Status != http.StatusSeeOther {
		t.Fatalf("pack: %d", r.Status)
	}
	page := b.Get("/ui/shipments").Body
	ids := regexp.MustCompile(`id="shipment-(SHP-[0-9a-f-]+)"`).FindAllStringSubmatch(page, -1)
	if len(ids) != 3 {
		t.Fatalf("%d shipments, want 3 (express alone, then one per address)", len(ids))
	}
	var storgatan string
	for _, m := range ids {
		sh, orders, err := s.store.Shipment(ctx, m[1])
		if err != nil {
			t.Fatal(err)
		}
		if sh.Express && (len(orders) != 1 || orders[0].ID != "ord-04") {
			t.Fatalf("express shipment holds %d orders", len(orders))
		}
		if !sh.Express && len(orders) == 1 && orders[0].ID == "ord-02" {
			storgatan = sh.ID
		}
	}
	if storgatan == "" {
		t.Fatal("ord-02 is not alone in the Storgatan parcel (ord-01 was re-produced, ord-04 is express)")
	}
	resp, err := b.Client.Get(hs.URL + "/ui/shipments/" + storgatan + "/packing-list.pdf")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 5)
	resp.Body.Read(head)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || string(head) != "%PDF-" {
		t.Fatalf("packing list: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), head)
	}
	if r := b.Post("/ui/shipments/"+storgatan+"/shipped", url.Values{"csrf": {token}}); r.Status != http.StatusSeeOther {
		t.Fatalf("mark shipped: %d", r.Status)
	}
	if o, _ := s.store.Get(ctx, "ord-02"); o.State != order.Shipped {
		t.Fatalf("ord-02 %s", o.State)
	}
	notices, _ := s.store.OrderNotices(ctx, "ord-02")
	var last map[string]any
	json.Unmarshal(notices[len(notices)-1].Payload, &last)
	if last["type"] != "order.shipped" || last["shipment_id"] != storgatan {
		t.Fatalf("last notice %v", last)
	}
	if r := b.Post("/ui/shipments/"+storgatan+"/shipped", url.Values{"csrf": {token}}); r.Status != http.StatusConflict {
		t.Fatalf("shipping twice: %d", r.Status)
	}
	if !stationtest.HasAudit(t, s.store, "operator:eva shipped") {
		t.Fatalf("audit %v", stationtest.Audit(t, s.store))
	}
}

// BenchmarkDashboard renders the live dashboard over HTTP with 2000 orders
// in the database: the cost of one SSE-triggered refresh.
func BenchmarkDashboard(b *testing.B) {
	s, hs := testPage(b, nil)
	ctx := context.Background()
	for i := range 2000 {
		if _, _, err := s.store.Submit(ctx, queue.NewOrder{ID: fmt.Sprintf("o-%05d", i), Supplier: "dev", BodyHash: "h", Doc: []byte(`{}`),
			CardType: "id06", Express: i%10 == 0, Approvals: []order.Approval{{Kind: "holder", Method: "bankid", At: time.Now()}},
			Photo: []byte("jpeg")}, "supplier:dev"); err != nil {
			b.Fatal(err)
		}
	}
	stationtest.AddUser(b, s.store, "eva", queue.RoleOperator, stationtest.Password)
	br := stationtest.NewBrowser(b, hs.URL)
	br.LoggedIn("eva", stationtest.Password)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/ui/", nil)
	req.Header.Set("X-Partial", "1")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := br.Do(req); r.Status != http.StatusOK {
			b.Fatal(r.Status)
		}
	}
}

// An order stuck at the printer (or reader) cannot be cancelled, but an
// operator can stop it from the page: the blank's card number is retired as
// spoiled, the order fails with who and why.
func TestOperatorStopsAnOrderAtTheDevices(t *testing.T) {
	s, hs := testPage(t, nil)
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	stationtest.AddUser(t, s.store, "quinn", queue.RoleQA, stationtest.Password)
	ctx := context.Background()

	o := queuetest.Printing(t, s.store, "stuck-1")
	b := stationtest.NewBrowser(t, hs.URL)
	token := b.LoggedIn("eva", stationtest.Password)
	page := b.Get("/ui/orders/stuck-1").Body
	if !strings.Contains(page, `id="spoil"`) || strings.Contains(page, `id="cancel"`) {
		t.Fatal("the page of a printing order must offer stop-and-spoil, not cancel")
	}
	if r := b.Post("/ui/orders/stuck-1/spoil", url.Values{"csrf": {token}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("stop without a reason: %d, want 422", r.Status)
	}
	qa := stationtest.NewBrowser(t, hs.URL)
	if r := qa.Post("/ui/orders/stuck-1/spoil", url.Values{"csrf": {qa.LoggedIn("quinn", stationtest.Password)}, "reason": {"x"}}); r.Status != http.StatusForbidden {
		t.Fatalf("QA stopped an order: %d", r.Status)
	}
	if r := b.Post("/ui/orders/stuck-1/spoil", url.Values{"csrf": {token}, "reason": {"printer jams on this card"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	got, _ := s.store.Get(ctx, "stuck-1")
	numbers, _ := s.store.CardNumbers(ctx, "stuck-1")
	if got.State != order.Failed || numbers[o.CardNumber] != "spoiled" {
		t.Fatalf("after stop: %s, card %s %q", got.State, o.CardNumber, numbers[o.CardNumber])
	}
	events, _ := s.store.Events(ctx, "stuck-1")
	if last := events[len(events)-1]; last.Actor != "operator:eva" || !strings.Contains(last.Note, "printer jams on this card") {
		t.Fatalf("last event %+v", last)
	}
	if page := b.Get("/ui/orders/stuck-1").Body; !strings.Contains(page, `id="retry"`) {
		t.Fatal("a stopped order offers no retry")
	}
}
