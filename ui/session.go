package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"id06/queue"
)

const (
	sessionCookie    = "station_session"
	loginCSRFCookie  = "station_login"
	defaultSessionTT = 12 * time.Hour // one shift
	minPasswordLen   = 10
)

// HashPassword hashes an operator's password with bcrypt.
func HashPassword(password string) ([]byte, error) {
	if utf8.RuneCountInString(password) < minPasswordLen {
		return nil, fmt.Errorf("the password must be at least %d characters", minPasswordLen)
	}
	if len(password) > 72 {
		return nil, errors.New("the password must be at most 72 bytes (bcrypt's limit)")
	}
	return bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
}

// dummyHash is compared against when the user does not exist, so a wrong
// name takes as long as a wrong password and timing gives nothing away.
// It is made on first use: at package init it would cost every CLI verb the
// ~50 ms of a bcrypt hash.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user, no such password"), bcrypt.DefaultCost)
	return h
})

// loginThrottle slows password guessing: after a few failures of one user
// name from one address, further attempts of that pair wait, doubling each
// time. Keying on the pair is what keeps strangers from locking anyone out:
// failures at one address do not hold up the others behind it (an office
// NAT), and a stranger guessing a name does not hold up its owner, who logs
// in from another address. Guessing one name from many addresses is slowed
// by bcrypt, not here.
type loginThrottle struct {
	mu       sync.Mutex
	now      func() time.Time
	free     int           // failures allowed before waiting
	base     time.Duration // first wait
	maxWait  time.Duration
	failures map[string]*failures
}

type failures struct {
	n     int
	until time.Time
	last  time.Time
}

func newLoginThrottle(now func() time.Time) *loginThrottle {
	return &loginThrottle{now: now, free: 5, base: 30 * time.Second, maxWait: 15 * time.Minute, failures: map[string]*failures{}}
}

// throttleKey names the (address, user) pair a failure counts against.
func throttleKey(ip, user string) string { return ip + " " + strings.ToLower(user) }

// wait reports how long the key must still wait before another attempt.
func (l *loginThrottle) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.failures[key]; ok && f.until.After(l.now()) {
		return f.until.Sub(l.now())
	}
	return 0
}

// maxThrottleKeys bounds the memory a stream of made-up user names can take.
const maxThrottleKeys = 10000

func (l *loginThrottle) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.failures) >= maxThrottleKeys {
		for k, f := range l.failures {
			if now.Sub(f.last) > l.maxWait {
				delete(l.failures, k)
			}
		}
	}
	f, ok := l.failures[key]
	if !ok || now.Sub(f.last) > l.maxWait {
		f = &failures{}
		l.failures[key] = f
	}
	f.n++
	f.last = now
	if over := f.n - l.free; over >= 0 {
		f.until = now.Add(min(l.base<<min(over, 20), l.maxWait))
	}
}

func (l *loginThrottle) succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return base64.RawURLEncoding.EncodeToString(b)
}

type sessionKey struct{}

func sessionOf(ctx context.Context) *queue.Session {
	s, _ := ctx.Value(sessionKey{}).(*queue.Session)
	return s
}

// actor names the logged-in operator in the audit trail.
func actorOf(ctx context.Context) string {
	if s := sessionOf(ctx); s != nil {
		return "operator:" + s.User
	}
	return "anonymous"
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (u *UI) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// requireSession admits requests of a logged-in operator; others go to the
// login page (an action posted with an expired session is not applied).
func (u *UI) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			u.toLogin(w, r, "")
			return
		}
		sess, err := u.store.LookupSession(r.Context(), c.Value)
		switch {
		case errors.Is(err, queue.ErrSessionExpired):
			u.audit(r.Context(), "anonymous", "session_expired", r.Method+" "+r.URL.Path)
			u.setCookie(w, r, sessionCookie, "", -1)
			u.toLogin(w, r, "expired")
			return
		case errors.Is(err, queue.ErrNotFound):
			u.setCookie(w, r, sessionCookie, "", -1)
			u.toLogin(w, r, "")
			return
		case err != nil:
			u.log.Error("session lookup failed", "err", err)
			http.Error(w, "the station database is not answering; try again", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

func (u *UI) toLogin(w http.ResponseWriter, r *http.Request, why string) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != "/ui/events" {
		q.Set("next", r.URL.RequestURI())
	}
	if why != "" {
		q.Set("why", why)
	}
	if r.Header.Get("Accept") == "text/event-stream" || r.Header.Get("X-Partial") != "" {
		// Scripts cannot follow a redirect to a login page; tell them plainly.
		http.Error(w, "log in again", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/ui/login?"+q.Encode(), http.StatusSeeOther)
}

// checkCSRF refuses a state-changing request whose form does not carry the
// session's CSRF token. SameSite=Strict already keeps other sites' forms
// out; the token also stops a page injected into our own origin.
func (u *UI) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		sess := sessionOf(r.Context())
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		token := r.PostFormValue("csrf")
		if token == "" {
			token = r.Header.Get("X-CSRF-Token")
		}
		if sess == nil || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) != 1 {
			u.audit(r.Context(), actorOf(r.Context()), "csrf_refused", r.Method+" "+r.URL.Path)
			u.uiError(w, r, http.StatusForbidden, "err_csrf")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowed maps each kind of action to the roles that may take it.
var allowed = map[string][]string{
	"produce": {queue.RoleOperator, queue.RoleAdmin}, // pause, resume, retry, overrides, cancel, ship, redeliver
	"qa":      {queue.RoleQA, queue.RoleAdmin},
	"admin":   {queue.RoleAdmin},
}

func may(sess *queue.Session, action string) bool {
	if sess == nil {
		return false
	}
	for _, r := range allowed[action] {
		if r == sess.Role {
			return true
		}
	}
	return false
}

// requireRole refuses (and audits) a request above the operator's rights.
func (u *UI) requireRole(action string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess := sessionOf(r.Context())
			if !may(sess, action) {
				u.audit(r.Context(), actorOf(r.Context()), "forbidden", fmt.Sprintf("%s %s needs %s rights", r.Method, r.URL.Path, action))
				u.uiError(w, r, http.StatusForbidden, "err_forbidden")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (u *UI) audit(ctx context.Context, actor, action, detail string) {
	if err := u.store.Audit(context.WithoutCancel(ctx), actor, action, detail); err != nil {
		u.log.Error("audit entry not written", "action", action, "err", err)
	}
}

// login checks a name and password. The answer never says which was wrong.
func (u *UI) login(ctx context.Context, name, password, ip string) (*queue.Session, string, error) {
	key := throttleKey(ip, name)
	acct, err := u.store.User(ctx, name)
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		return nil, "", err
	}
	// The audit names the account only when there is one: an unknown
	// "name" may be a password typed into the wrong box.
	who := "an unknown user name (not recorded)"
	if acct != nil {
		who = "user " + acct.Name
	}
	if d := u.throttle.wait(key); d > 0 {
		u.audit(ctx, "anonymous", "login_throttled", who)
		return nil, "", &throttled{wait: d}
	}
	hash := dummyHash()
	if acct != nil {
		hash = acct.PasswordHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || acct == nil {
		u.throttle.fail(key)
		u.audit(ctx, "anonymous", "login_failed", who)
		return nil, "", errBadLogin
	}
	u.throttle.succeed(key)
	cookie := randomToken()
	sess, err := u.store.CreateSession(ctx, cookie, acct.Name, randomToken(), u.sessionTTL)
	if err != nil {
		return nil, "", err
	}
	u.audit(ctx, "operator:"+acct.Name, "login", "role "+acct.Role)
	return sess, cookie, nil
}

var errBadLogin = errors.New("wrong user name or password")

type throttled struct{ wait time.Duration }

func (t *throttled) Error() string {
	return fmt.Sprintf("too many failed logins; try again in %s", t.wait.Round(time.Second))
}

func (u *UI) uiLoginPage(w http.ResponseWriter, r *http.Request) {
	token := randomToken()
	u.setCookie(w, r, loginCSRFCookie, token, 3600)
	p := u.newPage(w, r, "login", map[string]any{"CSRF": token, "Next": safeNext(r.URL.Query().Get("next")), "Why": r.URL.Query().Get("why")})
	u.render(w, r, http.StatusOK, "login", p)
}

func (u *UI) uiLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || c.Value == "" || r.PostFormValue("csrf") != c.Value {
		u.audit(r.Context(), "anonymous", "csrf_refused", "POST /ui/login")
		u.uiError(w, r, http.StatusForbidden, "err_csrf")
		return
	}
	next := safeNext(r.PostFormValue("next"))
	_, cookie, err := u.login(r.Context(), strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"), clientIP(r))
	var th *throttled
	switch {
	case errors.As(err, &th):
		w.Header().Set("Retry-After", fmt.Sprint(int(th.wait.Seconds())+1))
		u.loginAgain(w, r, http.StatusTooManyRequests, "err_throttled", next)
		return
	case errors.Is(err, errBadLogin):
		u.loginAgain(w, r, http.StatusUnauthorized, "err_login", next)
		return
	case err != nil:
		u.fail(w, r, err)
		return
	}
	u.setCookie(w, r, loginCSRFCookie, "", -1)
	u.setCookie(w, r, sessionCookie, cookie, int(u.sessionTTL.Seconds()))
	// Not http.Redirect: it cleans the path, and cleaning is what turned
	// /ui/../\host into /\host, which browsers follow to another host.
	w.Header().Set("Location", next)
	w.WriteHeader(http.StatusSeeOther)
}

// safeNext is where to go after logging in: next when it is a page of the
// operator page (a path under /ui/, as the login link wrote it), else /ui/.
// Refused: a scheme or host, a backslash (browsers read it as a slash), an
// empty or dot segment (// is a host to a browser, .. climbs out of /ui/),
// escaped or not, and anything url.Parse refuses (control characters).
func safeNext(next string) string {
	const home = "/ui/"
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || strings.Contains(next, `\`) {
		return home
	}
	if !strings.HasPrefix(u.Path, home) || strings.Contains(u.Path, `\`) {
		return home
	}
	for _, seg := range strings.Split(strings.TrimSuffix(u.Path[len(home):], "/"), "/") {
		if seg == "." || seg == ".." || seg == "" && u.Path != home {
			return home
		}
	}
	if u.RawQuery != "" {
		return u.EscapedPath() + "?" + u.RawQuery
	}
	return u.EscapedPath()
}

func (u *UI) loginAgain(w http.ResponseWriter, r *http.Request, status int, key, next string) {
	token := randomToken()
	u.setCookie(w, r, loginCSRFCookie, token, 3600)
	p := u.newPage(w, r, "login", map[string]any{"CSRF": token, "Next": next, "Error": key})
	u.render(w, r, status, "login", p)
}

func (u *UI) uiLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		u.store.DeleteSession(r.Context(), c.Value)
	}
	u.audit(r.Context(), actorOf(r.Context()), "logout", "")
	u.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
