// Package webhooktest is a supplier's webhook receiver for tests: a real
// HTTP endpoint on loopback that checks each delivery's signature and
// answers as the test scripts it.
package webhooktest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"id06/queue"
	"id06/webhook/signature"
)

// Receiver records what it was sent.
type Receiver struct {
	URL string

	mu     sync.Mutex
	secret string
	script []string // per attempt: "500", "hang", "200"; the last one repeats
	refuse string   // an order id this receiver always answers 500 for
	got    []Delivery
}

// Delivery is one request the receiver got.
type Delivery struct {
	EventID, EventType string
	SigErr             string // why the signature did not verify; "" when it did
	Body               map[string]any
}

// NewReceiver starts a receiver checking signatures with secret and
// answering as script says, until the test ends.
func NewReceiver(t testing.TB, secret string, script ...string) *Receiver {
	rc := &Receiver{secret: secret, script: script}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := Delivery{EventID: r.Header.Get(signature.HeaderEventID), EventType: r.Header.Get(signature.HeaderEventType)}
	if err := signature.Verify(rc.secret, r.Header.Get(signature.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		d.SigErr = err.Error()
	}
	json.Unmarshal(body, &d.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	step := rc.script[min(len(rc.got), len(rc.script))-1]
	if rc.refuse != "" && d.Body["order_id"] == rc.refuse {
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

// SetScript changes the answers from the next request on.
func (rc *Receiver) SetScript(script ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.script = append(make([]string, len(rc.got)), script...)
}

// Refuse makes the receiver answer 500 to every notice about orderID.
func (rc *Receiver) Refuse(orderID string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.refuse = orderID
}

// Deliveries returns what the receiver got so far.
func (rc *Receiver) Deliveries() []Delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Delivery(nil), rc.got...)
}

// Notice returns the one notice about an order.
func Notice(t testing.TB, s *queue.Store, orderID string) *queue.Notice {
	t.Helper()
	ns, err := s.OrderNotices(context.Background(), orderID)
	if err != nil || len(ns) != 1 {
		t.Fatalf("notices of %s: %d, %v", orderID, len(ns), err)
	}
	return ns[0]
}

// Wait waits until the one notice about an order is done.
func Wait(t testing.TB, s *queue.Store, orderID string, done func(*queue.Notice) bool) *queue.Notice {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := Notice(t, s, orderID)
		if done(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("notice of %s: attempts %d delivered %v dead %v last error %q", orderID, n.Attempts, n.Delivered, n.Dead, n.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
