package station

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

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// requireSession admits requests of a logged-in operator; others go to the
// login page (an action posted with an expired session is not applied).
func (s *Server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			s.toLogin(w, r, "")
			return
		}
		sess, err := s.store.LookupSession(r.Context(), c.Value)
		switch {
		case errors.Is(err, queue.ErrSessionExpired):
			s.audit(r.Context(), "anonymous", "session_expired", r.Method+" "+r.URL.Path)
			s.setCookie(w, r, sessionCookie, "", -1)
			s.toLogin(w, r, "expired")
			return
		case errors.Is(err, queue.ErrNotFound):
			s.setCookie(w, r, sessionCookie, "", -1)
			s.toLogin(w, r, "")
			return
		case err != nil:
			s.log.Error("session lookup failed", "err", err)
			http.Error(w, "the station database is not answering; try again", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

func (s *Server) toLogin(w http.ResponseWriter, r *http.Request, why string) {
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
func (s *Server) checkCSRF(next http.Handler) http.Handler {
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
			s.audit(r.Context(), actorOf(r.Context()), "csrf_refused", r.Method+" "+r.URL.Path)
			s.uiError(w, r, http.StatusForbidden, "err_csrf")
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
func (s *Server) requireRole(action string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess := sessionOf(r.Context())
			if !may(sess, action) {
				s.audit(r.Context(), actorOf(r.Context()), "forbidden", fmt.Sprintf("%s %s needs %s rights", r.Method, r.URL.Path, action))
				s.uiError(w, r, http.StatusForbidden, "err_forbidden")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// requireScope admits API tokens that carry scope. It runs after
// requireToken for /v1/ops; in front of the supplier API it lets requests
// without a valid token through so that requireToken answers them.
func (s *Server) requireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			t, err := s.store.LookupToken(r.Context(), token)
			if err != nil {
				next.ServeHTTP(w, r)
				return
			}
			for _, sc := range t.Scopes {
				if sc == scope {
					next.ServeHTTP(w, r)
					return
				}
			}
			s.audit(r.Context(), "token:"+t.Supplier, "forbidden", r.Method+" "+r.URL.Path+" needs scope "+scope)
			writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden",
				Message: "this API token lacks the " + scope + " scope; create one with: station token create --supplier NAME --scope " + scope})
		})
	}
}

func (s *Server) audit(ctx context.Context, actor, action, detail string) {
	if err := s.store.Audit(context.WithoutCancel(ctx), actor, action, detail); err != nil {
		s.log.Error("audit entry not written", "action", action, "err", err)
	}
}

// login checks a name and password. The answer never says which was wrong.
func (s *Server) login(ctx context.Context, name, password, ip string) (*queue.Session, string, error) {
	key := throttleKey(ip, name)
	u, err := s.store.User(ctx, name)
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		return nil, "", err
	}
	// The audit names the account only when there is one: an unknown
	// "name" may be a password typed into the wrong box.
	who := "an unknown user name (not recorded)"
	if u != nil {
		who = "user " + u.Name
	}
	if d := s.ops.throttle.wait(key); d > 0 {
		s.audit(ctx, "anonymous", "login_throttled", who)
		return nil, "", &throttled{wait: d}
	}
	hash := dummyHash()
	if u != nil {
		hash = u.PasswordHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil {
		s.ops.throttle.fail(key)
		s.audit(ctx, "anonymous", "login_failed", who)
		return nil, "", errBadLogin
	}
	s.ops.throttle.succeed(key)
	cookie := randomToken()
	sess, err := s.store.CreateSession(ctx, cookie, u.Name, randomToken(), s.ops.sessionTTL)
	if err != nil {
		return nil, "", err
	}
	s.audit(ctx, "operator:"+u.Name, "login", "role "+u.Role)
	return sess, cookie, nil
}

var errBadLogin = errors.New("wrong user name or password")

type throttled struct{ wait time.Duration }

func (t *throttled) Error() string {
	return fmt.Sprintf("too many failed logins; try again in %s", t.wait.Round(time.Second))
}

// Token scopes: orders is the supplier API, operator the /v1/ops API.
var tokenScopes = []string{"orders", "operator"}

// ParseScopes reads a comma-separated scope list (station token create).
func ParseScopes(list string) ([]string, error) {
	var out []string
	for _, sc := range strings.Split(list, ",") {
		sc = strings.TrimSpace(sc)
		if sc == "" {
			continue
		}
		ok := false
		for _, known := range tokenScopes {
			ok = ok || sc == known
		}
		if !ok {
			return nil, fmt.Errorf("scope %q: use orders, operator or both (orders,operator)", sc)
		}
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, errors.New("give at least one scope: orders or operator")
	}
	return out, nil
}
