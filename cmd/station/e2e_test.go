package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The whole station on simulated devices: 50 orders in over HTTP, 50 cards out.
func TestEndToEnd50Orders(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	d := startDaemon(t, dir)
	photos := passPhotos(t)
	const n = 50
	ids := make([]string, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("e2e-%03d", i)
		bodies[i] = orderJSON(t, ids[i], photos[i%len(photos)], i%10 == 0)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code, body, err := d.do(http.MethodPost, "/v1/orders", bodies[i])
			if err != nil || code != http.StatusCreated {
				errs <- fmt.Errorf("order %s: %d %s %v", ids[i], code, body, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	orders := d.waitFinal(ids, 5*time.Minute)
	seen := map[string]string{}
	for _, id := range ids {
		o := orders[id]
		if o.State != "produced" {
			t.Errorf("%s ended %s: %+v", id, o.State, o.Events)
			continue
		}
		if prev, dup := seen[o.CardNumber]; dup {
			t.Errorf("card number %s given to %s and %s", o.CardNumber, prev, id)
		}
		seen[o.CardNumber] = id
		if o.ChipUID == "" || o.ValidUntil == "" {
			t.Errorf("%s produced without chip UID or validity: %+v", id, o)
		}
		// Events must follow the lifecycle in order.
		want := []string{"received", "queued", "imaging", "ready", "encoding", "printing", "produced"}
		k := 0
		for _, e := range o.Events {
			if k < len(want) && e.State == want[k] {
				k++
			}
		}
		if k != len(want) {
			t.Errorf("%s events out of lifecycle order: %+v", id, o.Events)
		}
	}
	faces, _ := filepath.Glob(filepath.Join(dir, "spool", "*.pdf"))
	if len(faces) != n {
		t.Errorf("spool holds %d faces, want %d", len(faces), n)
	}
	for _, f := range faces {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), "%PDF-") {
			t.Errorf("%s is not a PDF: %v", f, err)
		}
	}
	// Resubmitting the same body is idempotent; a changed body under the id is refused.
	code, _, _ := d.do(http.MethodPost, "/v1/orders", bodies[1])
	if code != http.StatusOK {
		t.Errorf("same body again: %d, want 200", code)
	}
	code, _, _ = d.do(http.MethodPost, "/v1/orders", orderJSON(t, ids[1], photos[2%len(photos)], false))
	if code != http.StatusConflict {
		t.Errorf("different body, same id: %d, want 409", code)
	}
	d.stop()
}

// An order without the holder's approval waits and is never produced.
func TestUnapprovedOrderIsNeverProduced(t *testing.T) {
	skipShort(t, "runs the real binary")
	d := startDaemon(t, t.TempDir())
	var doc map[string]any
	if err := json.Unmarshal(orderJSON(t, "unapproved-1", passPhotos(t)[0], false), &doc); err != nil {
		t.Fatal(err)
	}
	doc["approvals"] = []any{}
	body, _ := json.Marshal(doc)
	code, b, _ := d.do(http.MethodPost, "/v1/orders", body)
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, b)
	}
	time.Sleep(2 * time.Second)
	o, err := d.order("unapproved-1")
	if err != nil || o.State != "awaiting_approval" {
		t.Fatalf("unapproved order: %v %+v", err, o)
	}
	code, b, _ = d.do(http.MethodPost, "/v1/orders/unapproved-1/approvals", []byte(`{"kind":"holder","method":"bankid","at":"`+time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)+`"}`))
	if code != http.StatusOK {
		t.Fatalf("approval: %d %s", code, b)
	}
	if got := d.waitFinal([]string{"unapproved-1"}, 2*time.Minute)["unapproved-1"]; got.State != "produced" {
		t.Fatalf("after approval: %s", got.State)
	}
	code, _, _ = d.do(http.MethodPost, "/v1/orders/unapproved-1/cancel", nil)
	if code != http.StatusConflict {
		t.Fatalf("cancel after production: %d, want 409", code)
	}
}

// BenchmarkEndToEnd200 runs the real daemon on simulated devices and times
// 200 orders from the first POST to the last card produced.
func BenchmarkEndToEnd200(b *testing.B) {
	photos := passPhotos(b)
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		d := startDaemon(b, dir)
		const n = 200
		ids := make([]string, n)
		bodies := make([][]byte, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("bench-%03d", i)
			bodies[i] = orderJSON(b, ids[i], photos[i%len(photos)], false)
		}
		b.StartTimer()
		start := time.Now()
		for i := range ids {
			if code, body, err := d.do(http.MethodPost, "/v1/orders", bodies[i]); err != nil || code != http.StatusCreated {
				b.Fatalf("%d %s %v", code, body, err)
			}
		}
		orders := d.waitFinal(ids, 10*time.Minute)
		elapsed := time.Since(start)
		b.StopTimer()
		produced := 0
		for _, o := range orders {
			if o.State == "produced" {
				produced++
			}
		}
		b.ReportMetric(float64(produced)/elapsed.Seconds(), "cards/s")
		b.ReportMetric(float64(produced), "produced")
		d.stop()
	}
}
