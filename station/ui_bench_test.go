package station

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
)

// BenchmarkDashboard renders the live dashboard over HTTP with 2000 orders
// in the database: the cost of one SSE-triggered refresh.
func BenchmarkDashboard(b *testing.B) {
	s, hs := opStation(b, nil)
	ctx := context.Background()
	for i := range 2000 {
		if _, _, err := s.store.Submit(ctx, queue.NewOrder{ID: fmt.Sprintf("o-%05d", i), Supplier: "dev", BodyHash: "h", Doc: []byte(`{}`),
			CardType: "id06", Express: i%10 == 0, Approvals: []order.Approval{{Kind: "holder", Method: "bankid", At: time.Now()}},
			Photo: []byte("jpeg")}, "supplier:dev"); err != nil {
			b.Fatal(err)
		}
	}
	opUser(b, s, "eva", queue.RoleOperator, opPassword)
	br := newOpBrowser(b, hs.URL)
	br.loggedIn("eva", opPassword)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/ui/", nil)
	req.Header.Set("X-Partial", "1")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := br.do(req); r.status != http.StatusOK {
			b.Fatal(r.status)
		}
	}
}

// BenchmarkWebhookDelivery delivers one notice to a loopback receiver:
// outbox read, signing, HTTP round trip and the delivered mark.
func BenchmarkWebhookDelivery(b *testing.B) {
	s, _ := opStation(b, nil)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	ln := opLoopback(b)
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	d := NewDeliverer(s.store, []SupplierConfig{{Name: "acme", WebhookURL: "http://" + ln.Addr().String(), WebhookSecret: "k"}}, s.log, s.metrics)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := fmt.Sprintf("b-%d", i)
		if _, _, err := s.store.Submit(ctx, queue.NewOrder{ID: id, Supplier: "acme", BodyHash: "h", Doc: []byte(`{}`), CardType: "id06", Photo: []byte("j")}, "t"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.store.Cancel(ctx, id, "", "t", "bench"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if n, err := d.DeliverDue(ctx, "acme"); err != nil || n != 1 {
			b.Fatalf("delivered %d: %v", n, err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 2048)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		Sign("supplier-secret", now, body)
	}
}

func opLoopback(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}
