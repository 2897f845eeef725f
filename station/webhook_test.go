package station

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"id06/queue"
)

// receiver is a real HTTP endpoint on loopback whose answers a test scripts.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	script []string // per attempt: "500", "hang", "200"; the last one repeats
	refuse string   // an order id this receiver always answers 500 for
	got    []hookDelivery
	srv    *httptest.Server
}

type hookDelivery struct {
	eventID, eventType, sigErr string
	body                       map[string]any
}

func newHookReceiver(t *testing.T, secret string, script ...string) *hookReceiver {
	rc := &hookReceiver{secret: secret, script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := hookDelivery{eventID: r.Header.Get(HeaderEventID), eventType: r.Header.Get(HeaderEventType)}
	if err := VerifySignature(rc.secret, r.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		d.sigErr = err.Error()
	}
	json.Unmarshal(body, &d.body)
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	step := rc.script[min(len(rc.got), len(rc.script))-1]
	if rc.refuse != "" && d.body["order_id"] == rc.refuse {
		step = "500"
	}
	rc.mu.Unlock()
	switch step {
	case "hang":
		<-r.Context().Done() // until the station gives up on this attempt
	case "500":
		http.Error(w, "receiver broken", http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (rc *hookReceiver) setScript(script ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.script = append(make([]string, len(rc.got)), script...)
}

func (rc *hookReceiver) deliveries() []hookDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookDelivery(nil), rc.got...)
}

// fastDeliverer has short pauses so a test sees several attempts quickly.
func hookDeliverer(s *Server, suppliers []SupplierConfig) *Deliverer {
	d := NewDeliverer(s.store, suppliers, slog.New(slog.NewTextHandler(io.Discard, nil)), s.metrics)
	d.BaseDelay, d.MaxDelay, d.Poll = 20*time.Millisecond, 80*time.Millisecond, 10*time.Millisecond
	d.SetTimeout(300 * time.Millisecond)
	return d
}

// cancelledOrder gives the supplier one order.cancelled notice.
func hookOrder(t *testing.T, s *Server, supplier, id string) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.store.Submit(ctx, queue.NewOrder{ID: id, Supplier: supplier, BodyHash: "h", Doc: []byte(`{}`), CardType: "id06",
		Photo: []byte("jpeg")}, "supplier:"+supplier); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Cancel(ctx, id, supplier, "supplier:"+supplier, "test"); err != nil {
		t.Fatal(err)
	}
}

func hookNotice(t *testing.T, s *Server, orderID string) *queue.Notice {
	t.Helper()
	ns, err := s.store.OrderNotices(context.Background(), orderID)
	if err != nil || len(ns) != 1 {
		t.Fatalf("notices of %s: %d, %v", orderID, len(ns), err)
	}
	return ns[0]
}

func waitHook(t *testing.T, s *Server, orderID string, done func(*queue.Notice) bool) *queue.Notice {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := hookNotice(t, s, orderID)
		if done(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("notice of %s: attempts %d delivered %v dead %v last error %q", orderID, n.Attempts, n.Delivered, n.Dead, n.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hookCounter(t *testing.T, m *Metrics, result string) float64 {
	var pb dto.Metric
	if err := m.webhooks.WithLabelValues(result).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetCounter().GetValue()
}

func TestWebhookRetriesThroughFailureAndTimeout(t *testing.T) {
	s, _ := opStation(t, nil)
	rc := newHookReceiver(t, "acme-secret", "500", "hang", "200")
	d := hookDeliverer(s, []SupplierConfig{{Name: "acme", WebhookURL: rc.srv.URL + "/hooks", WebhookSecret: "acme-secret"}})
	hookOrder(t, s, "acme", "o-1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	n := waitHook(t, s, "o-1", func(n *queue.Notice) bool { return n.Delivered })
	got := rc.deliveries()
	if len(got) != 3 || n.Attempts != 3 {
		t.Fatalf("%d requests, %d attempts recorded; want 3 (500, timeout, 2xx)", len(got), n.Attempts)
	}
	for i, g := range got {
		if g.eventID != n.EventID || g.body["event_id"] != n.EventID {
			t.Errorf("attempt %d: event id %q / %v, want %s on every attempt", i+1, g.eventID, g.body["event_id"], n.EventID)
		}
		if g.sigErr != "" {
			t.Errorf("attempt %d: signature: %s", i+1, g.sigErr)
		}
		if g.eventType != "order.cancelled" || g.body["order_id"] != "o-1" {
			t.Errorf("attempt %d: %s %v", i+1, g.eventType, g.body)
		}
	}
	if hookCounter(t, s.metrics, "failed") != 2 || hookCounter(t, s.metrics, "delivered") != 1 {
		t.Fatalf("metrics: failed %v delivered %v", hookCounter(t, s.metrics, "failed"), hookCounter(t, s.metrics, "delivered"))
	}
}

func TestWebhookDeadLetterAndRedelivery(t *testing.T) {
	s, hs := opStation(t, nil)
	broken := newHookReceiver(t, "s1", "500")
	hanging := newHookReceiver(t, "s2", "hang")
	healthy := newHookReceiver(t, "s3", "200")
	d := hookDeliverer(s, []SupplierConfig{
		{Name: "broken", WebhookURL: broken.srv.URL, WebhookSecret: "s1"},
		{Name: "hanging", WebhookURL: hanging.srv.URL, WebhookSecret: "s2"},
		{Name: "healthy", WebhookURL: healthy.srv.URL, WebhookSecret: "s3"},
	})
	d.MaxAttempts = 3
	s.ops.deliverer = d // the page's redeliver button wakes this one
	hookOrder(t, s, "broken", "b-1")
	hookOrder(t, s, "hanging", "h-1")
	hookOrder(t, s, "healthy", "ok-1")
	hookOrder(t, s, "no-webhook", "n-1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitHook(t, s, "ok-1", func(n *queue.Notice) bool { return n.Delivered })
	dead := waitHook(t, s, "b-1", func(n *queue.Notice) bool { return n.Dead })
	hung := waitHook(t, s, "h-1", func(n *queue.Notice) bool { return n.Dead })
	if dead.Attempts != 3 || !strings.Contains(dead.LastError, "500") || strings.Contains(dead.LastError, "receiver broken") {
		t.Fatalf("dead notice: attempts %d, last error %q (want the status, not the receiver's body)", dead.Attempts, dead.LastError)
	}
	if !strings.Contains(hung.LastError, "no answer within") {
		t.Fatalf("hanging receiver: last error %q", hung.LastError)
	}
	if n := hookNotice(t, s, "n-1"); n.Attempts != 0 || n.Dead {
		t.Fatalf("a supplier without webhook_url had its notice attempted: %+v", n)
	}
	time.Sleep(100 * time.Millisecond)
	if len(broken.deliveries()) != 3 {
		t.Fatalf("a dead notice was still sent: %d requests", len(broken.deliveries()))
	}
	if !opHasAudit(t, s, "station webhook_dead") {
		t.Fatalf("dead letters not audited: %v", opAudit(t, s))
	}
	if hookCounter(t, s.metrics, "dead") != 2 {
		t.Fatalf("dead counter %v", hookCounter(t, s.metrics, "dead"))
	}
	// The daemon kept serving throughout.
	if resp, err := http.Get(hs.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v", err)
	}

	// The receiver is fixed; an operator redelivers from the page.
	broken.setScript("200")
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := newOpBrowser(t, hs.URL)
	token := b.loggedIn("eva", opPassword)
	page := b.get("/ui/webhooks").body
	if !strings.Contains(page, "notice-"+hookID(dead.ID)) || !strings.Contains(page, "Redeliver") {
		t.Fatal("the webhooks page does not offer the dead notice for redelivery")
	}
	if r := b.post("/ui/notices/"+hookID(dead.ID)+"/redeliver", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("redeliver: %d", r.status)
	}
	waitHook(t, s, "b-1", func(n *queue.Notice) bool { return n.Delivered })
	if !opHasAudit(t, s, "operator:eva redeliver") {
		t.Fatalf("redelivery not audited: %v", opAudit(t, s))
	}
	if r := b.post("/ui/notices/"+hookID(dead.ID)+"/redeliver", url.Values{"csrf": {token}}); r.status != http.StatusConflict {
		t.Fatalf("redelivering a delivered notice: %d, want 409", r.status)
	}
	metrics := opGet(t, hs.URL+"/metrics")
	for _, want := range []string{`station_webhook_deliveries_total{result="dead"} 2`, `station_webhook_outbox{status="dead"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func hookID(n int64) string { b, _ := json.Marshal(n); return string(b) }

func opGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestVerifySignature(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	body := []byte(`{"event_id":"e1","type":"order.produced"}`)
	good := Sign("secret", now, body)
	tests := []struct {
		name, secret, header string
		body                 []byte
		at                   time.Time
		ok                   bool
	}{
		{"valid", "secret", good, body, now, true},
		{"within tolerance", "secret", good, body, now.Add(4 * time.Minute), true},
		{"wrong secret", "other", good, body, now, false},
		{"body changed", "secret", good, []byte(`{"event_id":"e2","type":"order.produced"}`), now, false},
		{"replayed later", "secret", good, body, now.Add(10 * time.Minute), false},
		{"timestamp changed", "secret", strings.Replace(good, "t=1790000000", "t=1790000001", 1), body, now, false},
		{"malformed", "secret", "sha256=abc", body, now, false},
		{"empty", "secret", "", body, now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
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

// A card produced by the running station reaches the supplier's webhook
// with what the supplier needs to hand it out, signed.
func TestProducedOrderReachesWebhook(t *testing.T) {
	rc := newHookReceiver(t, "dev-secret", "200")
	cfg := Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Suppliers = []SupplierConfig{{Name: "dev", WebhookURL: rc.srv.URL, WebhookSecret: "dev-secret"}}
	s, addr, _ := opRunStation(t, cfg)
	token, err := os.ReadFile(cfg.DevTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	opSubmit(t, "http://"+addr, strings.TrimSpace(string(token)), opExample(t, "hook-1", "pass_london_005_03.jpg", false))
	o := opWait(t, s, "hook-1", queue.Produced)
	n := waitHook(t, s, "hook-1", func(n *queue.Notice) bool { return n.Delivered })
	var got *hookDelivery
	for _, d := range rc.deliveries() {
		if d.eventID == n.EventID {
			got = &d
		}
	}
	if got == nil || got.sigErr != "" || got.eventType != "order.produced" {
		t.Fatalf("delivery %+v", got)
	}
	want := map[string]string{"order_id": "hook-1", "card_number": o.CardNumber, "chip_uid": o.ChipUID,
		"valid_until": o.ValidUntil, "certificate_serial": o.CertSerial}
	for k, v := range want {
		if got.body[k] != v || v == "" {
			t.Errorf("%s = %v, want %q", k, got.body[k], v)
		}
	}
	sealed, _ := got.body["sealed_pin_puk"].(string)
	if !strings.Contains(sealed, "AGE ENCRYPTED") {
		t.Errorf("sealed_pin_puk is not an age-sealed message: %.40q", sealed)
	}
	// The floor's figures are all on /metrics.
	metrics := opGet(t, "http://"+addr+"/metrics")
	for _, want := range []string{`station_orders{state="produced"} 1`, `station_stage_seconds_count{stage="photo"}`,
		`station_stage_seconds_count{stage="encode"}`, `station_stage_seconds_count{stage="print"}`, "station_cards_produced_total 1",
		"station_spoiled_blanks_total 0", `station_webhook_deliveries_total{result="delivered"}`, `station_webhook_outbox{status="dead"} 0`,
		"station_express_deadlines_missed_total 0", "station_reader_up", "station_printer_up 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A notice the receiver keeps refusing does not hold up the ones after it.
func TestWebhookRefusedNoticeDoesNotBlockOthers(t *testing.T) {
	s, _ := opStation(t, nil)
	rc := newHookReceiver(t, "k", "200")
	rc.refuse = "p-0"
	d := hookDeliverer(s, []SupplierConfig{{Name: "acme", WebhookURL: rc.srv.URL, WebhookSecret: "k"}})
	d.MaxAttempts = 4
	for i := range 5 {
		hookOrder(t, s, "acme", fmt.Sprintf("p-%d", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 1; i < 5; i++ {
		waitHook(t, s, fmt.Sprintf("p-%d", i), func(n *queue.Notice) bool { return n.Delivered })
	}
	if n := waitHook(t, s, "p-0", func(n *queue.Notice) bool { return n.Dead }); n.Attempts != 4 {
		t.Fatalf("refused notice: %d attempts", n.Attempts)
	}
}

// Webhook URLs are checked at start-up: http(s) only, and no link-local or
// cloud metadata address unless the supplier's config opts in. Loopback and
// private networks stay allowed (a receiver on the same host or LAN).
func TestWebhookURLsAreCheckedAtStart(t *testing.T) {
	for _, tc := range []struct {
		url   string
		allow bool
		bad   string // what the error must say; "" = accepted
	}{
		{"https://erp.example.com/hooks/station", false, ""},
		{"http://127.0.0.1:9999/hook", false, ""},
		{"http://[::1]:9999/hook", false, ""},
		{"http://10.1.2.3/hook", false, ""},
		{"http://169.254.169.254/latest/meta-data/", true, ""},
		{"file:///etc/passwd", false, "must be an http or https URL"},
		{"gopher://erp.example.com:70/", false, "http or https"},
		{"ftp://erp.example.com/", false, "http or https"},
		{"erp.example.com/hook", false, "http or https"},
		{"http:///hook", false, "no host"},
		{"http://169.254.169.254/latest/meta-data/", false, "link-local"},
		{"http://169.254.170.2/v2/credentials", false, "link-local"},
		{"http://[fe80::1%25eth0]/", false, "link-local"},
		{"http://[::ffff:169.254.169.254]/", false, "link-local"},
		{"http://[fd00:ec2::254]/", false, "metadata"},
		{"http://metadata.google.internal/computeMetadata/v1/", false, "metadata"},
		{"http://METADATA.google.internal./", false, "metadata"},
		{"http://100.100.100.200/latest/meta-data/", false, "metadata"},
		{"http://0.0.0.0:9999/", false, "unspecified"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			cfg := Defaults()
			cfg.Suppliers = []SupplierConfig{{Name: "acme", WebhookURL: tc.url, WebhookSecret: "s", AllowLinkLocalWebhook: tc.allow}}
			err := cfg.Validate()
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.bad) || !strings.Contains(err.Error(), "acme") {
				t.Fatalf("error %v: want one naming the supplier acme and saying %q", err, tc.bad)
			}
		})
	}
}

// The address a webhook connects to is checked again when it connects, so
// a name that resolves to a metadata address later (DNS rebinding) is
// refused as well.
func TestWebhookDialRefusesLinkLocal(t *testing.T) {
	s, _ := opStation(t, nil)
	// As if erp.example.com now resolved to the metadata address: Validate
	// passed the name, the dial sees the address.
	d := hookDeliverer(s, []SupplierConfig{{Name: "acme", WebhookURL: "http://169.254.169.254:80/hook", WebhookSecret: "s"}})
	d.SetTimeout(10 * time.Second)
	hookOrder(t, s, "acme", "rebind-1")
	start := time.Now()
	if _, err := d.DeliverDue(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	n := hookNotice(t, s, "rebind-1")
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
