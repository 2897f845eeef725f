// Package webhook delivers the outbox's notices to each supplier's webhook,
// signed (package signature), at least once, with backoff.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"id06/queue"
	"id06/webhook/signature"
)

// Supplier is a supplier system that receives webhooks: its name is the one
// its API token was created for.
type Supplier struct {
	Name          string `json:"name"`
	WebhookURL    string `json:"webhook_url"`
	WebhookSecret string `json:"webhook_secret"`
	// AllowLinkLocalWebhook lets webhook_url reach a link-local or cloud
	// metadata address, refused by default (loopback and private networks
	// are always allowed).
	AllowLinkLocalWebhook bool `json:"allow_link_local_webhook"`
}

// Outbox is what the deliverer needs of the database.
type Outbox interface {
	ClaimNotices(ctx context.Context, suppliers []string, limit int, lease time.Duration) ([]*queue.Notice, error)
	NoticeDelivered(ctx context.Context, id int64) error
	NoticeFailed(ctx context.Context, id int64, errText string, next time.Time, dead bool) error
	Audit(ctx context.Context, actor, action, detail string) error
}

// Counter is told the result of each attempt: delivered, failed or dead.
type Counter interface {
	Webhook(result string)
}

// Deliverer pushes outbox notices to each supplier's webhook: at least once,
// oldest first per supplier, with exponential backoff and jitter between
// attempts, parked as dead after MaxAttempts for an operator to redeliver.
type Deliverer struct {
	store     Outbox
	suppliers map[string]Supplier
	log       *slog.Logger
	counter   Counter
	clients   map[string]*http.Client // per supplier: whether link-local is allowed differs
	now       func() time.Time
	jitter    func() float64 // in [0, 1)

	MaxAttempts int
	BaseDelay   time.Duration // delay after the first failure
	MaxDelay    time.Duration
	Poll        time.Duration // how often to look for due notices when idle

	wake chan struct{}
}

// New makes a deliverer for the suppliers that have a webhook URL; counter
// is told the result of each attempt.
func New(store Outbox, suppliers []Supplier, log *slog.Logger, counter Counter) *Deliverer {
	d := &Deliverer{store: store, suppliers: map[string]Supplier{}, log: log, counter: counter,
		clients:     map[string]*http.Client{},
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
			d.clients[s.Name] = webhookClient(s.AllowLinkLocalWebhook)
		}
	}
	return d
}

// Hooked reports whether a supplier has a webhook to deliver to.
func (d *Deliverer) Hooked(supplier string) bool { _, ok := d.suppliers[supplier]; return ok }

// Suppliers names the suppliers with a webhook, sorted.
func (d *Deliverer) Suppliers() []string { return slices.Sorted(maps.Keys(d.suppliers)) }

// webhookClient posts notices. A receiver that hangs must not hold the
// supplier's queue: each attempt has its own deadline, connection set-up
// included. Redirects are not followed, and every connection is checked
// where it really goes (checkDial), whatever the name resolved to.
func webhookClient(allowLinkLocal bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: checkDial(allowLinkLocal)}).DialContext
	return &http.Client{Timeout: 15 * time.Second, Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// SetTimeout sets the deadline of one delivery attempt.
func (d *Deliverer) SetTimeout(t time.Duration) {
	for _, c := range d.clients {
		c.Timeout = t
	}
}

// Cloud metadata services hand out credentials to whoever asks from inside
// the machine; a webhook must not be a way to ask. Most live at link-local
// 169.254.169.254; these are the others.
var (
	metadataHosts = map[string]bool{"metadata.google.internal": true, "metadata.goog": true, "metadata": true}
	metadataAddrs = map[netip.Addr]bool{
		netip.MustParseAddr("fd00:ec2::254"):   true, // AWS over IPv6
		netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
		netip.MustParseAddr("192.0.0.192"):     true, // Oracle Cloud (classic)
	}
)

// addrProblem says why a webhook must not connect to ip, "" when it may.
// Loopback and private networks are allowed: the receiver may run on the
// same host or the supplier's LAN.
func addrProblem(ip netip.Addr, allowLinkLocal bool) string {
	ip = ip.Unmap()
	switch {
	case ip.IsUnspecified():
		return "is the unspecified address"
	case allowLinkLocal:
		return ""
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "is link-local, where cloud metadata services answer"
	case metadataAddrs[ip.WithZone("")]:
		return "is a cloud metadata service"
	}
	return ""
}

// CheckURL refuses, at start-up, a webhook_url the station must not
// post to. It names the scheme and host, not the URL, which may carry a
// secret.
func CheckURL(raw string, allowLinkLocal bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an http or https URL (not scheme %q)", u.Scheme)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return errors.New("has no host")
	}
	optIn := "; if this receiver really is there, set allow_link_local_webhook: true for the supplier"
	if metadataHosts[host] && !allowLinkLocal {
		return fmt.Errorf("host %s is a cloud metadata service%s", host, optIn)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if p := addrProblem(ip, allowLinkLocal); p != "" {
			return fmt.Errorf("address %s %s%s", ip, p, optIn)
		}
	}
	return nil
}

// checkDial is a net.Dialer Control: it runs on the address actually
// dialled, after name resolution, so a name that resolves somewhere else
// at delivery time (DNS rebinding) is refused too. Through an HTTP proxy it
// sees the proxy's address.
func checkDial(allowLinkLocal bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhook: cannot check address %q: %w", address, err)
		}
		if p := addrProblem(ap.Addr(), allowLinkLocal); p != "" {
			return fmt.Errorf("webhook: refused to connect to %s: it %s", ap.Addr(), p)
		}
		return nil
	}
}

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

func (d *Deliverer) supplierLoop(ctx context.Context, sup Supplier, wake <-chan struct{}) {
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
		due, err := d.store.ClaimNotices(ctx, []string{supplier}, 1, 2*d.clients[supplier].Timeout+10*time.Second)
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
func (d *Deliverer) attempt(ctx context.Context, sup Supplier, n *queue.Notice) bool {
	log := d.log.With("supplier", sup.Name, "order", n.OrderID, "event", n.EventID, "type", n.Type, "attempt", n.Attempts+1)
	errText := d.post(ctx, sup, n)
	if errText == "" {
		// Counted before the record, so whoever sees the record sees the count.
		d.counter.Webhook("delivered")
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
	d.counter.Webhook(result)
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
func (d *Deliverer) post(ctx context.Context, sup Supplier, n *queue.Notice) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sup.WebhookURL, bytes.NewReader(n.Payload))
	if err != nil {
		return "bad webhook_url: " + err.Error()
	}
	now := d.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "id06-station")
	req.Header.Set(signature.HeaderEventID, n.EventID)
	req.Header.Set(signature.HeaderEventType, n.Type)
	req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(signature.HeaderSignature, signature.Sign(sup.WebhookSecret, now, n.Payload))
	client := d.clients[sup.Name]
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return fmt.Sprintf("no answer within %s", client.Timeout)
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
