package webhook

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"id06/queue"
	"id06/queue/queuetest"
	"id06/webhook/webhooktest"
)

// counts is the counter of delivery results the metrics would get.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) Webhook(result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[result]++
}

func (c *counts) get(result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[result]
}

// hookDeliverer has short pauses so a test sees several attempts quickly.
func hookDeliverer(s Outbox, suppliers []Supplier, c Counter) *Deliverer {
	d := New(s, suppliers, slog.New(slog.NewTextHandler(io.Discard, nil)), c)
	d.BaseDelay, d.MaxDelay, d.Poll = 20*time.Millisecond, 80*time.Millisecond, 10*time.Millisecond
	d.SetTimeout(300 * time.Millisecond)
	return d
}

func run(t *testing.T, d *Deliverer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestWebhookRetriesThroughFailureAndTimeout(t *testing.T) {
	s := queuetest.Open(t)
	rc := webhooktest.NewReceiver(t, "acme-secret", "500", "hang", "200")
	c := &counts{}
	d := hookDeliverer(s, []Supplier{{Name: "acme", WebhookURL: rc.URL + "/hooks", WebhookSecret: "acme-secret"}}, c)
	queuetest.Cancelled(t, s, "acme", "o-1")
	run(t, d)

	n := webhooktest.Wait(t, s, "o-1", func(n *queue.Notice) bool { return n.Delivered })
	got := rc.Deliveries()
	if len(got) != 3 || n.Attempts != 3 {
		t.Fatalf("%d requests, %d attempts recorded; want 3 (500, timeout, 2xx)", len(got), n.Attempts)
	}
	for i, g := range got {
		if g.EventID != n.EventID || g.Body["event_id"] != n.EventID {
			t.Errorf("attempt %d: event id %q / %v, want %s on every attempt", i+1, g.EventID, g.Body["event_id"], n.EventID)
		}
		if g.SigErr != "" {
			t.Errorf("attempt %d: signature: %s", i+1, g.SigErr)
		}
		if g.EventType != "order.cancelled" || g.Body["order_id"] != "o-1" {
			t.Errorf("attempt %d: %s %v", i+1, g.EventType, g.Body)
		}
	}
	if c.get("failed") != 2 || c.get("delivered") != 1 {
		t.Fatalf("metrics: failed %v delivered %v", c.get("failed"), c.get("delivered"))
	}
}

// A notice the receiver keeps refusing does not hold up the ones after it.
func TestWebhookRefusedNoticeDoesNotBlockOthers(t *testing.T) {
	s := queuetest.Open(t)
	rc := webhooktest.NewReceiver(t, "k", "200")
	rc.Refuse("p-0")
	d := hookDeliverer(s, []Supplier{{Name: "acme", WebhookURL: rc.URL, WebhookSecret: "k"}}, &counts{})
	d.MaxAttempts = 4
	for i := range 5 {
		queuetest.Cancelled(t, s, "acme", fmt.Sprintf("p-%d", i))
	}
	run(t, d)
	for i := 1; i < 5; i++ {
		webhooktest.Wait(t, s, fmt.Sprintf("p-%d", i), func(n *queue.Notice) bool { return n.Delivered })
	}
	if n := webhooktest.Wait(t, s, "p-0", func(n *queue.Notice) bool { return n.Dead }); n.Attempts != 4 {
		t.Fatalf("refused notice: %d attempts", n.Attempts)
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	d := &Deliverer{BaseDelay: time.Second, MaxDelay: time.Minute}
	tests := []struct {
		attempts int
		jitter   float64
		want     time.Duration
	}{
		{0, 0, 500 * time.Millisecond},
		{0, 0.5, 750 * time.Millisecond},
		{1, 0, time.Second},
		{3, 0, 4 * time.Second},
		{10, 0, 30 * time.Second}, // capped at MaxDelay, then halved by the jitter floor
		{60, 0.5, 45 * time.Second},
	}
	for _, tc := range tests {
		d.jitter = func() float64 { return tc.jitter }
		if got := d.backoff(tc.attempts); got != tc.want {
			t.Errorf("backoff(%d) with jitter %v = %s, want %s", tc.attempts, tc.jitter, got, tc.want)
		}
	}
}

// BenchmarkWebhookDelivery delivers one notice to a loopback receiver:
// outbox read, signing, HTTP round trip and the delivered mark.
func BenchmarkWebhookDelivery(b *testing.B) {
	s := queuetest.Open(b)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	d := New(s, []Supplier{{Name: "acme", WebhookURL: "http://" + ln.Addr().String(), WebhookSecret: "k"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), &counts{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		queuetest.Cancelled(b, s, "acme", fmt.Sprintf("b-%d", i))
		b.StartTimer()
		if n, err := d.DeliverDue(ctx, "acme"); err != nil || n != 1 {
			b.Fatalf("delivered %d: %v", n, err)
		}
	}
}

// The address a webhook connects to is checked again when it connects, so
// a name that resolves to a metadata address later (DNS rebinding) is
// refused as well.
func TestWebhookDialRefusesLinkLocal(t *testing.T) {
	s := queuetest.Open(t)
	// As if erp.example.com now resolved to the metadata address: Validate
	// passed the name, the dial sees the address.
	d := hookDeliverer(s, []Supplier{{Name: "acme", WebhookURL: "http://169.254.169.254:80/hook", WebhookSecret: "s"}}, &counts{})
	d.SetTimeout(10 * time.Second)
	queuetest.Cancelled(t, s, "acme", "rebind-1")
	start := time.Now()
	if _, err := d.DeliverDue(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	n := webhooktest.Notice(t, s, "rebind-1")
	if n.Delivered || !strings.Contains(n.LastError, "link-local") {
		t.Fatalf("delivered %v, last error %q: want refused as link-local", n.Delivered, n.LastError)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the station tried to reach the address before refusing it")
	}
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1]:80", "[fd00:ec2::254]:80", "[::ffff:169.254.169.254]:80", "100.100.100.200:80"} {
		if err := checkDial(false)("tcp", addr, nil); err == nil {
			t.Errorf("dial to %s allowed", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "192.0.2.10:443"} {
		if err := checkDial(false)("tcp", addr, nil); err != nil {
			t.Errorf("dial to %s refused: %v", addr, err)
		}
	}
	if err := checkDial(true)("tcp", "169.254.169.254:80", nil); err != nil {
		t.Errorf("opted-in supplier refused: %v", err)
	}
}
