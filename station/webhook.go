package station

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"id06/queue"
)

// Webhook headers. The signature covers the timestamp and the exact body, so
// a receiver can refuse both forged and replayed deliveries:
//
//	Station-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
const (
	HeaderEventID   = "Station-Event-Id"
	HeaderEventType = "Station-Event-Type"
	HeaderTimestamp = "Station-Timestamp"
	HeaderSignature = "Station-Signature"
)

// Sign returns the Station-Signature header value for body sent at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac(secret, t, body))
}

func mac(secret, t string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(t))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks a Station-Signature header the way a receiver
// should: the MAC in constant time, and the timestamp within tolerance of now.
func VerifySignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var t, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v1 == "" {
		return errors.New("signature header must be t=<unix seconds>,v1=<hex>")
	}
	got, err := hex.DecodeString(v1)
	if err != nil || !hmac.Equal(got, mac(secret, t, body)) {
		return errors.New("signature does not match the body")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp is %s away from now", d.Round(time.Second))
	}
	return nil
}

// Deliverer pushes outbox notices to each supplier's webhook: at least once,
// oldest first per supplier, with exponential backoff and jitter between
// attempts, parked as dead after MaxAttempts for an operator to redeliver.
type Deliverer struct {
	store     *queue.Store
	suppliers map[string]SupplierConfig
	log       *slog.Logger
	metrics   *Metrics
	client    *http.Client
	now       func() time.Time
	jitter    func() float64 // in [0, 1)

	MaxAttempts int
	BaseDelay   time.Duration // delay after the first failure
	MaxDelay    time.Duration
	Poll        time.Duration // how often to look for due notices when idle

	wake chan struct{}
}

// NewDeliverer makes a deliverer for the suppliers that have a webhook URL.
func NewDeliverer(store *queue.Store, suppliers []SupplierConfig, log *slog.Logger, m *Metrics) *Deliverer {
	d := &Deliverer{store: store, suppliers: map[string]SupplierConfig{}, log: log, metrics: m,
		// A receiver that hangs must not hold the supplier's queue: each
		// attempt has its own deadline, connection set-up included.
		client:      &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		now:         time.Now,
		jitter:      rand.Float64,
		MaxAttempts: 12,
		BaseDelay:   5 * time.Second,
		MaxDelay:    time.Hour,
		Poll:        time.Second,
		wake:        make(chan struct{}, 1),
	}
	for _, s := range suppliers {
		if s.WebhookURL != "" {
			d.suppliers[s.Name] = s
		}
	}
	return d
}

// SetTimeout sets the deadline of one delivery attempt.
func (d *Deliverer) SetTimeout(t time.Duration) { d.client.Timeout = t }

// Wake makes the deliverer look for due notices now (after a redelivery).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends; each supplier has its own loop so one slow
// receiver never delays another supplier's notices.
func (d *Deliverer) Run(ctx context.Context) {
	if len(d.suppliers) == 0 {
		return
	}
	wakes := make([]chan struct{}, 0, len(d.suppliers))
	var wg sync.WaitGroup
	for _, sup := range d.suppliers {
		w := make(chan struct{}, 1)
		wakes = append(wakes, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.supplierLoop(ctx, sup, w)
		}()
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-d.wake:
			for _, w := range wakes {
				select {
				case w <- struct{}{}:
				default:
				}
			}
		}
	}
}

func (d *Deliverer) supplierLoop(ctx context.Context, sup SupplierConfig, wake <-chan struct{}) {
	for ctx.Err() == nil {
		if _, err := d.DeliverDue(ctx, sup.Name); err != nil && ctx.Err() == nil {
			d.log.Error("webhook: reading the outbox failed", "supplier", sup.Name, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(d.Poll):
		}
	}
}

// DeliverDue makes one attempt at each due notice of a supplier and reports
// how many were delivered.
func (d *Deliverer) DeliverDue(ctx context.Context, supplier string) (int, error) {
	sup, ok := d.suppliers[supplier]
	if !ok {
		return 0, fmt.Errorf("supplier %q has no webhook_url", supplier)
	}
	delivered := 0
	// One notice at a time, each claimed for this station while it is
	// tried (long enough for one attempt), so a fleet never sends a
	// notice from two stations at once.
	for range 50 {
		if ctx.Err() != nil {
			return delivered, ctx.Err()
		}
		due, err := d.store.ClaimNotices(ctx, []string{supplier}, 1, 2*d.client.Timeout+10*time.Second)
		if err != nil || len(due) == 0 {
			return delivered, err
		}
		if !d.attempt(ctx, sup, due[0]) {
			// The receiver is down or slow: the next notices would most
			// likely wait out the same timeout. They stay due and are
			// tried one per poll until the receiver answers again.
			break
		}
		delivered++
	}
	return delivered, nil
}

// attempt posts one notice and records the outcome; true when delivered.
func (d *Deliverer) attempt(ctx context.Context, sup SupplierConfig, n *queue.Notice) bool {
	log := d.log.With("supplier", sup.Name, "order", n.OrderID, "event", n.EventID, "type", n.Type, "attempt", n.Attempts+1)
	errText := d.post(ctx, sup, n)
	if errText == "" {
		// Counted before the record, so whoever sees the record sees the count.
		d.metrics.webhooks.WithLabelValues("delivered").Inc()
		if err := d.store.NoticeDelivered(ctx, n.ID); err != nil {
			log.Error("webhook delivered but not recorded; it will be sent again", "err", err)
			return false
		}
		log.Info("webhook delivered")
		return true
	}
	dead := n.Attempts+1 >= d.MaxAttempts
	next := d.now().Add(d.backoff(n.Attempts))
	result := "failed"
	if dead {
		result = "dead"
	}
	d.metrics.webhooks.WithLabelValues(result).Inc()
	if err := d.store.NoticeFailed(ctx, n.ID, errText, next, dead); err != nil {
		log.Error("webhook failure not recorded", "err", err)
		return false
	}
	if dead {
		log.Error("webhook gave up; redeliver it from the operator page", "error", errText)
		if err := d.store.Audit(ctx, "station", "webhook_dead", fmt.Sprintf("notice %d (%s, order %s) to %s after %d attempts: %s",
			n.ID, n.Type, n.OrderID, sup.Name, n.Attempts+1, errText)); err != nil {
			log.Error("audit entry not written", "err", err)
		}
	} else {
		log.Warn("webhook failed; will retry", "error", errText, "next", next)
	}
	return false
}

// backoff is BaseDelay·2^attempts, capped, with "equal jitter": at least
// half the delay, so retries stay spread out but never hammer.
func (d *Deliverer) backoff(attempts int) time.Duration {
	delay := d.MaxDelay
	if attempts < 30 {
		delay = min(d.BaseDelay<<attempts, d.MaxDelay)
	}
	half := delay / 2
	return half + time.Duration(d.jitter()*float64(delay-half))
}

// post sends a notice; "" on a 2xx answer, else why it failed. The reason
// names the status or the transport error, never the body (the receiver's
// answer may echo personal data).
func (d *Deliverer) post(ctx context.Context, sup SupplierConfig, n *queue.Notice) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sup.WebhookURL, bytes.NewReader(n.Payload))
	if err != nil {
		return "bad webhook_url: " + err.Error()
	}
	now := d.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "id06-station")
	req.Header.Set(HeaderEventID, n.EventID)
	req.Header.Set(HeaderEventType, n.Type)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(sup.WebhookSecret, now, n.Payload))
	resp, err := d.client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return fmt.Sprintf("no answer within %s", d.client.Timeout)
		}
		return "request failed: " + err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "HTTP " + resp.Status
	}
	return ""
}
