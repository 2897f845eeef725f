package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

type supplierKey struct{}

func supplierOf(ctx context.Context) string { s, _ := ctx.Value(supplierKey{}).(string); return s }

// requireToken admits requests with a supplier's bearer token.
func (a *API) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="station"`)
			writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "send the supplier's API token as 'Authorization: Bearer TOKEN'"})
			return
		}
		t, err := a.store.LookupToken(r.Context(), token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="station", error="invalid_token"`)
			writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "the API token is not valid; ask the station administrator for a token (station token create)"})
			return
		}
		if !a.limiter.allow(t.Supplier, w) {
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), supplierKey{}, t.Supplier)))
	})
}

// bearerToken is the token of an "Authorization: Bearer TOKEN" header; the
// scheme's case does not matter in HTTP, and some clients send
// "bearer".
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return token, ok && strings.EqualFold(scheme, "Bearer")
}

// requireScope admits API tokens that carry scope. It runs after
// requireToken for /v1/ops; in front of the supplier API it lets requests
// without a valid token through so that requireToken answers them.
func (a *API) requireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, _ := bearerToken(r)
			t, err := a.store.LookupToken(r.Context(), token)
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
			a.audit(r.Context(), "token:"+t.Supplier, "forbidden", r.Method+" "+r.URL.Path+" needs scope "+scope)
			writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden",
				Message: "this API token lacks the " + scope + " scope; create one with: station token create --supplier NAME --scope " + scope})
		})
	}
}

// NewToken makes a random bearer token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "st_" + base64.RawURLEncoding.EncodeToString(b), nil
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

// rateLimiter gives each supplier its own token bucket, so one supplier's
// batch job cannot starve the others.
type rateLimiter struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

func newRateLimiter(perSec float64, burst int) *rateLimiter {
	return &rateLimiter{perSec: rate.Limit(perSec), burst: burst, buckets: map[string]*rate.Limiter{}}
}

// allow answers 429 with Retry-After when the supplier is over its rate.
func (l *rateLimiter) allow(supplier string, w http.ResponseWriter) bool {
	l.mu.Lock()
	b, ok := l.buckets[supplier]
	if !ok {
		b = rate.NewLimiter(l.perSec, l.burst)
		l.buckets[supplier] = b
	}
	l.mu.Unlock()
	res := b.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "too many requests for this supplier; retry after the number of seconds in Retry-After"})
		return false
	}
	return true
}
