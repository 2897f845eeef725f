package station

import (
	"math"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/time/rate"
)

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
