package station

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"id06/personalize"
	"id06/queue"
)

// opStation is testServer for tests that need no supplier token.
func opStation(t testing.TB, mutate func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	s, hs, _ := testServer(t, mutate)
	return s, hs
}

func opUser(t testing.TB, s *Server, name, role, password string) {
	t.Helper()
	hash, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.AddUser(context.Background(), name, role, hash); err != nil {
		t.Fatal(err)
	}
}

// opBrowser is a cookie-keeping client that does not follow redirects, so
// tests see where the station sends them.
type opBrowser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newOpBrowser(t testing.TB, base string) *opBrowser {
	jar, _ := cookiejar.New(nil)
	return &opBrowser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type opResponse struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *opBrowser) do(req *http.Request) opResponse {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return opResponse{resp.StatusCode, string(body), resp.Header.Get("Location"), resp.Header}
}

func (b *opBrowser) get(path string) opResponse {
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *opBrowser) post(path string, form url.Values) opResponse {
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var opCSRFField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token from a page.
func (b *opBrowser) csrf(path string) string {
	b.t.Helper()
	m := opCSRFField.FindStringSubmatch(b.get(path).body)
	if m == nil {
		b.t.Fatalf("no csrf field on %s", path)
	}
	return m[1]
}

func (b *opBrowser) login(user, password string) opResponse {
	b.t.Helper()
	return b.post("/ui/login", url.Values{"csrf": {b.csrf("/ui/login")}, "user": {user}, "password": {password}, "next": {"/ui/"}})
}

// loggedIn logs in and returns the session's CSRF token.
func (b *opBrowser) loggedIn(user, password string) string {
	b.t.Helper()
	if r := b.login(user, password); r.status != http.StatusSeeOther || r.location != "/ui/" {
		b.t.Fatalf("login %s: %d %s", user, r.status, r.location)
	}
	return b.csrf("/ui/")
}

func opAudit(t testing.TB, s *Server) []string {
	t.Helper()
	log, err := s.store.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range log {
		out = append(out, e.Actor+" "+e.Action)
	}
	return out
}

func opHasAudit(t testing.TB, s *Server, entry string) bool {
	for _, a := range opAudit(t, s) {
		if a == entry {
			return true
		}
	}
	return false
}

const opPassword = "correct horse battery"

func TestLoginGivesNoHintWhichPartWasWrong(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	tests := []struct{ name, user, password string }{
		{"wrong password", "eva", "wrong password!"},
		{"unknown user", "nobody", opPassword},
		{"empty", "", ""},
	}
	var bodies []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newOpBrowser(t, hs.URL)
			r := b.login(tc.user, tc.password)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", r.status)
			}
			if !strings.Contains(r.body, "Wrong user name or password.") {
				t.Fatalf("body lacks the generic message")
			}
			if strings.Contains(r.body, "station_session") || b.get("/ui/").status != http.StatusSeeOther {
				t.Fatal("a failed login opened a session")
			}
			msg := regexp.MustCompile(`id="login-error">([^<]*)<`).FindStringSubmatch(r.body)
			bodies = append(bodies, msg[1])
		})
	}
	for _, m := range bodies[1:] {
		if m != bodies[0] {
			t.Fatalf("messages differ: %q vs %q", bodies[0], m)
		}
	}
	if !opHasAudit(t, s, "anonymous login_failed") {
		t.Fatalf("failed logins not audited: %v", opAudit(t, s))
	}
}

func TestLoginThrottled(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	s.ops.throttle.now = func() time.Time { return now }
	b := newOpBrowser(t, hs.URL)
	for i := 0; i < s.ops.throttle.free; i++ {
		if r := b.login("eva", "guess number "+string(rune('a'+i))); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	r := b.login("eva", opPassword)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("right password while throttled: %d Retry-After=%q, want 429", r.status, r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, "Too many failed logins") {
		t.Fatal("throttled answer does not say why")
	}
	// Someone else behind the same address is not held up by eva's lock.
	opUser(t, s, "olle", queue.RoleQA, opPassword)
	if r := newOpBrowser(t, hs.URL).login("olle", opPassword); r.status != http.StatusSeeOther {
		t.Fatalf("olle: %d", r.status)
	}
	now = now.Add(s.ops.throttle.base + time.Second)
	if r := b.login("eva", opPassword); r.status != http.StatusSeeOther {
		t.Fatalf("after the wait: %d, want 303", r.status)
	}
	if !opHasAudit(t, s, "anonymous login_throttled") || !opHasAudit(t, s, "operator:eva login") {
		t.Fatalf("audit: %v", opAudit(t, s))
	}
}

// Throttling keys on (address, user): guessing from one address does not
// lock out the others behind it (an office NAT), and a stranger guessing a
// name does not lock its owner out; the guesser waits longer each time.
func TestLoginThrottleNeitherLocksOutTheAddressNorTheUser(t *testing.T) {
	s, _ := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	opUser(t, s, "olle", queue.RoleOperator, opPassword)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	s.ops.throttle.now = func() time.Time { return now }
	ctx := context.Background()
	const office, stranger = "192.0.2.10", "203.0.113.9"

	// A colleague in the office mistypes olle's password over and over.
	for i := 0; i < 3*s.ops.throttle.free; i++ {
		s.login(ctx, "olle", "not the password", office)
	}
	if _, _, err := s.login(ctx, "eva", opPassword, office); err != nil {
		t.Fatalf("eva behind the same address as the guesser: %v", err)
	}

	// A stranger guesses eva's password; the wait grows with each failure.
	var waits []time.Duration
	for i := 0; i < s.ops.throttle.free+4; i++ {
		_, _, err := s.login(ctx, "eva", "guess "+string(rune('a'+i)), stranger)
		var th *throttled
		if errors.As(err, &th) {
			t.Fatalf("attempt %d throttled although the last wait was over", i)
		}
		if w := s.ops.throttle.wait(throttleKey(stranger, "eva")); w > 0 {
			waits = append(waits, w)
			now = now.Add(w)
		}
	}
	if len(waits) < 4 || waits[1] != 2*waits[0] || waits[3] != 2*waits[2] {
		t.Fatalf("waits %v: want doubling after %d free failures", waits, s.ops.throttle.free)
	}
	if _, _, err := s.login(ctx, "eva", "one more guess", stranger); err == nil || !errors.Is(err, errBadLogin) {
		t.Fatalf("after the wait the stranger gets an answer again: %v", err)
	}
	var th *throttled
	if _, _, err := s.login(ctx, "eva", opPassword, stranger); !errors.As(err, &th) {
		t.Fatalf("the stranger's next try at once: %v, want throttled", err)
	}
	// Meanwhile eva, at her own address, is not locked out.
	if _, _, err := s.login(ctx, "eva", opPassword, office); err != nil {
		t.Fatalf("eva from her own address: %v", err)
	}
}

// A failed login records the typed user name only when it names an
// account: otherwise it may be a password typed into the wrong box.
func TestFailedLoginKeepsUnknownNamesOutOfTheAudit(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	const typo = "Tr0ub4dor&3-in-the-user-box"
	b := newOpBrowser(t, hs.URL)
	for i := 0; i <= s.ops.throttle.free; i++ { // the last one is throttled
		b.login(typo, "whatever")
	}
	b.login("eva", "wrong password")
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
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := newOpBrowser(t, hs.URL)
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/ui/login", strings.NewReader(url.Values{
		"csrf": {b.csrf("/ui/login")}, "user": {"eva"}, "password": {opPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
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
	raw, _ := os.ReadFile(s.cfg.DBPath())
	if strings.Contains(string(raw), sess.Value) {
		t.Fatal("the session cookie value is stored in the database")
	}
}

func TestFormsNeedTheSessionCSRFToken(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := newOpBrowser(t, hs.URL)
	token := b.loggedIn("eva", opPassword)
	other := newOpBrowser(t, hs.URL)
	opUser(t, s, "olle", queue.RoleOperator, opPassword)
	otherToken := other.loggedIn("olle", opPassword)
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
			r := b.post("/ui/pause", tc.form)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "nothing was changed") {
				t.Fatalf("status %d, want 403 with an explanation", r.status)
			}
			if paused, _ := s.pipeline.Paused(); paused {
				t.Fatal("the station paused on a request without a valid CSRF token")
			}
		})
	}
	if !opHasAudit(t, s, "operator:eva csrf_refused") {
		t.Fatalf("refusals not audited: %v", opAudit(t, s))
	}
	// Without the login page's cookie, a login form is refused too.
	if r := newOpBrowser(t, hs.URL).post("/ui/login", url.Values{"csrf": {"x"}, "user": {"eva"}, "password": {opPassword}}); r.status != http.StatusForbidden {
		t.Fatalf("login without its CSRF cookie: %d", r.status)
	}
	r := b.post("/ui/pause", url.Values{"csrf": {token}, "message": {"Ribbon change"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("pause with the token: %d", r.status)
	}
	if paused, msg := s.pipeline.Paused(); !paused || msg != "Ribbon change" {
		t.Fatalf("paused=%v %q", paused, msg)
	}
	if !strings.Contains(b.get("/ui/").body, "Ribbon change") {
		t.Fatal("the dashboard does not show the pause message")
	}
	if r := b.post("/ui/resume", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("resume: %d", r.status)
	}
	if !opHasAudit(t, s, "operator:eva pause") || !opHasAudit(t, s, "operator:eva resume") {
		t.Fatalf("audit: %v", opAudit(t, s))
	}
}

func TestExpiredSessionAppliesNothing(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	ctx := context.Background()
	if _, err := s.store.CreateSession(ctx, "expired-cookie", "eva", "expired-csrf", -time.Minute); err != nil {
		t.Fatal(err)
	}
	b := newOpBrowser(t, hs.URL)
	u, _ := url.Parse(hs.URL + "/ui/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "expired-cookie", Path: "/ui/"}})
	r := b.get("/ui/orders")
	if r.status != http.StatusSeeOther || !strings.Contains(r.location, "why=expired") || !strings.Contains(r.location, "next=%2Fui%2Forders") {
		t.Fatalf("GET with an expired session: %d %s", r.status, r.location)
	}
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "expired-cookie", Path: "/ui/"}})
	r = b.post("/ui/pause", url.Values{"csrf": {"expired-csrf"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/ui/login") {
		t.Fatalf("POST with an expired session: %d %s", r.status, r.location)
	}
	if paused, _ := s.pipeline.Paused(); paused {
		t.Fatal("an expired session paused the station")
	}
	if login := b.get(strings.TrimPrefix(r.location, "")); !strings.Contains(login.body, "session has expired") {
		t.Fatal("the login page does not say the session expired")
	}
	if !opHasAudit(t, s, "anonymous session_expired") {
		t.Fatalf("audit: %v", opAudit(t, s))
	}
}

func TestRolesAreEnforcedOnTheServer(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	opUser(t, s, "quinn", queue.RoleQA, opPassword)
	opUser(t, s, "ada", queue.RoleAdmin, opPassword)
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
	browsers := map[string]*opBrowser{}
	tokens := map[string]string{}
	for _, u := range []string{"eva", "quinn", "ada"} {
		browsers[u] = newOpBrowser(t, hs.URL)
		tokens[u] = browsers[u].loggedIn(u, opPassword)
	}
	for _, tc := range tests {
		t.Run(tc.user+" "+tc.method+" "+tc.path, func(t *testing.T) {
			b := browsers[tc.user]
			var r opResponse
			if tc.method == http.MethodGet {
				r = b.get(tc.path)
			} else {
				r = b.post(tc.path, url.Values{"csrf": {tokens[tc.user]}, "reason": {"test"}})
			}
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
		})
	}
	if !opHasAudit(t, s, "operator:quinn forbidden") || !opHasAudit(t, s, "operator:eva forbidden") {
		t.Fatalf("refusals not audited: %v", opAudit(t, s))
	}
	if paused, msg := s.pipeline.Paused(); !paused || !strings.Contains(msg, "ada") {
		t.Fatalf("only the admin's pause should have applied: paused=%v %q", paused, msg)
	}
}

// needsFixOrder puts an order in needs_fix the way the photo worker does.
func opNeedsFix(t testing.TB, s *Server, id string) {
	t.Helper()
	ctx := context.Background()
	_, _, err := s.store.Submit(ctx, queue.NewOrder{ID: id, Supplier: "dev", BodyHash: "h-" + id,
		Doc: []byte(`{"holder":{"first_name":"Anna","last_name":"Svensson","print_name":"Anna Svensson"}}`), CardType: "id06",
		Approvals: []queue.Approval{{Kind: "holder", Method: "bankid", At: time.Now()}}, Photo: []byte("jpeg")}, "supplier:dev")
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.store.Claim(ctx, "test-worker", time.Minute, map[queue.State]queue.State{queue.Queued: queue.Imaging})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.NeedsFixPhoto(ctx, j, []queue.Reason{{Code: "blurry", MessageEN: "The photo is blurry.", MessageSV: "Fotot är suddigt."}}); err != nil {
		t.Fatal(err)
	}
}

func TestOrderActionsFromThePage(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	opNeedsFix(t, s, "nf-1")
	b := newOpBrowser(t, hs.URL)
	token := b.loggedIn("eva", opPassword)

	list := b.get("/ui/needs-fix").body
	if !strings.Contains(list, "nf-1") || !strings.Contains(list, "The photo is blurry.") {
		t.Fatal("needs_fix list lacks the order or its reason")
	}
	if sv := b.get("/ui/needs-fix?lang=sv").body; !strings.Contains(sv, "Fotot är suddigt.") || !strings.Contains(sv, "Att åtgärda") {
		t.Fatal("Swedish page lacks Swedish labels or reasons")
	}
	b.get("/ui/?lang=en")
	if r := b.get("/ui/orders?q=Anna"); !strings.Contains(r.body, "nf-1") {
		t.Fatal("search by holder name does not find the order")
	}
	if r := b.post("/ui/orders/nf-1/override", url.Values{"csrf": {token}, "verdict": {"pass"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("override without a reason: %d, want 422", r.status)
	}
	r := b.post("/ui/orders/nf-1/override", url.Values{"csrf": {token}, "verdict": {"pass"}, "reason": {"Glasses reflect, face clearly visible"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("override: %d %s", r.status, r.body)
	}
	o, _ := s.store.Get(context.Background(), "nf-1")
	if o.State != queue.Queued || o.PhotoOverride != "pass" {
		t.Fatalf("after override: %s %q", o.State, o.PhotoOverride)
	}
	events, _ := s.store.Events(context.Background(), "nf-1")
	last := events[len(events)-1]
	if last.Actor != "operator:eva" || !strings.Contains(last.Note, "Glasses reflect") {
		t.Fatalf("last event %+v", last)
	}
	if page := b.get("/ui/orders/nf-1").body; !strings.Contains(page, "operator:eva") {
		t.Fatal("the order page timeline does not show who acted")
	}
	// Retrying an order that has not failed is refused with the reason.
	r = b.post("/ui/orders/nf-1/retry", url.Values{"csrf": {token}, "reason": {"again"}})
	if r.status != http.StatusConflict || !strings.Contains(r.body, "the order is queued") {
		t.Fatalf("retry of a queued order: %d", r.status)
	}
	if r := b.post("/ui/orders/nf-1/cancel", url.Values{"csrf": {token}, "reason": {"holder left the company"}}); r.status != http.StatusSeeOther {
		t.Fatalf("cancel: %d", r.status)
	}
	notices, _ := s.store.OrderNotices(context.Background(), "nf-1")
	if n := notices[len(notices)-1]; n.Type != "order.cancelled" {
		t.Fatalf("last notice %s, want order.cancelled", n.Type)
	}
	if r := b.get("/ui/orders/nope"); r.status != http.StatusNotFound {
		t.Fatalf("unknown order: %d", r.status)
	}
}

func TestEventStreamAnnouncesChanges(t *testing.T) {
	s, hs := opStation(t, nil)
	s.ops.poll = 50 * time.Millisecond
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := newOpBrowser(t, hs.URL)
	b.loggedIn("eva", opPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func(version string) (*http.Response, func() string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/ui/events?v="+url.QueryEscape(version), nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := b.c.Do(req)
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
	opNeedsFix(t, s, "nf-2")
	for !strings.Contains(next(), "event: change") {
	}
	// A page rendered before that change learns of it when its stream opens.
	stale := "a version from before nf-2"
	if _, next := open(stale); !strings.Contains(next(), "event: change") {
		t.Fatal("a page that missed a change was not told to refresh")
	}
	// Without a session the stream is refused plainly, not redirected.
	anon := newOpBrowser(t, hs.URL)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/ui/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	if r := anon.do(req); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous events: %d", r.status)
	}
}

// After logging in, the station follows ?next= only to a page of its own
// operator page; anything a browser could take to another host, or that
// climbs out of /ui/, goes to the dashboard instead.
func TestLoginNextStaysOnTheOperatorPage(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
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
			b := newOpBrowser(t, hs.URL)
			// The login page copies ?next= into its form; the form is what is posted.
			page := b.get("/ui/login?next=" + url.QueryEscape(tc.next))
			m := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(page.body)
			if m == nil {
				t.Fatal("no next field on the login page")
			}
			r := b.post("/ui/login", url.Values{"csrf": {b.csrf("/ui/login")}, "user": {"eva"}, "password": {opPassword}, "next": {tc.next}})
			if r.status != http.StatusSeeOther || r.location != tc.want {
				t.Fatalf("next %q: %d Location %q, want 303 %q", tc.next, r.status, r.location, tc.want)
			}
		})
	}
}

// The dashboard says when the station runs on development keys, and says
// nothing once real ones are configured.
func TestDashboardWarnsOfDevelopmentKeys(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := newOpBrowser(t, hs.URL)
	b.loggedIn("eva", opPassword)
	page := b.get("/ui/?lang=en").body
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
	s, hs = opStation(t, func(c *Config) {
		c.CACert, c.CAKey, c.SealTo = filepath.Join(pki, "ca.pem"), filepath.Join(pki, "ca-key.pem"), id.Recipient().String()
	})
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b = newOpBrowser(t, hs.URL)
	b.loggedIn("eva", opPassword)
	if page := b.get("/ui/").body; strings.Contains(page, `id="dev-keys"`) {
		t.Fatal("the dashboard warns although real keys are configured")
	}
}
