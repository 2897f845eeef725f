package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"id06/order"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t testing.TB) (*Store, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	s, err := Open(filepath.Join(t.TempDir(), "station.db"), WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

func holder(at time.Time) []order.Approval {
	return []order.Approval{{Kind: "holder", Method: "bankid", At: at}}
}

func submit(t testing.TB, s *Store, id string, express bool, approvals []order.Approval) *order.Record {
	t.Helper()
	o, _, err := s.Submit(context.Background(), NewOrder{ID: id, Supplier: "sup", BodyHash: "h-" + id, Doc: []byte(`{}`),
		CardType: "id06", Express: express, Approvals: approvals, Photo: []byte("jpeg")}, "api")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

var photoMoves = map[order.State]order.State{order.Queued: order.Imaging, order.Imaging: order.Imaging}

func TestSubmitIsIdempotent(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	n := NewOrder{ID: "o1", Supplier: "sup", BodyHash: "abc", Doc: []byte(`{}`), CardType: "id06", Approvals: holder(c.now()), Photo: []byte("p")}
	first, created, err := s.Submit(ctx, n, "api")
	if err != nil || !created || first.State != order.Queued {
		t.Fatalf("first submit: %v created=%v state=%v", err, created, first.State)
	}
	again, created, err := s.Submit(ctx, n, "api")
	if err != nil || created || again.State != order.Queued {
		t.Fatalf("same body again: %v created=%v", err, created)
	}
	n.BodyHash = "other"
	if _, _, err := s.Submit(ctx, n, "api"); !errors.Is(err, ErrConflict) {
		t.Fatalf("different body: got %v, want ErrConflict", err)
	}
	ev, _ := s.Events(ctx, "o1")
	if len(ev) != 2 || ev[0].State != order.Received || ev[1].State != order.Queued {
		t.Fatalf("events = %+v", ev)
	}
}

func TestUnapprovedOrdersWait(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	o := submit(t, s, "o1", false, nil)
	if o.State != order.AwaitingApproval {
		t.Fatalf("state = %s", o.State)
	}
	if _, err := s.Claim(ctx, "w", time.Minute, photoMoves); !errors.Is(err, ErrNothingToClaim) {
		t.Fatalf("claimed an unapproved order: %v", err)
	}
	o, err := s.AddApproval(ctx, "o1", "sup", holder(c.now())[0], "api")
	if err != nil || o.State != order.Queued {
		t.Fatalf("after approval: %v %s", err, o.State)
	}
}

func TestTradeOrgApprovalRequired(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	o, _, err := s.Submit(ctx, NewOrder{ID: "t1", Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`), CardType: "id06",
		TradeOrgRequired: true, Approvals: holder(c.now()), Photo: []byte("p")}, "api")
	if err != nil || o.State != order.AwaitingApproval {
		t.Fatalf("%v %s", err, o.State)
	}
	o, err = s.AddApproval(ctx, "t1", "sup", order.Approval{Kind: "trade_org", Method: "eid", At: c.now()}, "api")
	if err != nil || o.State != order.Queued {
		t.Fatalf("%v %s", err, o.State)
	}
}

func TestClaimPriority(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	base := c.now()
	submit(t, s, "old", false, holder(base.Add(-3*time.Hour)))
	submit(t, s, "new", false, holder(base.Add(-1*time.Hour)))
	submit(t, s, "express", true, holder(base.Add(-10*time.Minute)))
	var got []string
	for {
		j, err := s.Claim(ctx, "w", time.Minute, photoMoves)
		if errors.Is(err, ErrNothingToClaim) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, j.ID)
	}
	want := []string{"express", "old", "new"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claim order = %v, want %v", got, want)
	}
	o, _ := s.Get(ctx, "express")
	if want := base.Add(-10 * time.Minute).Add(order.ExpressWindow); !o.Deadline.Equal(want) {
		t.Fatalf("deadline = %v, want %v", o.Deadline, want)
	}
}

func TestFinishingIsGuarded(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	submit(t, s, "o1", false, holder(c.now()))
	j, err := s.Claim(ctx, "w1", time.Minute, photoMoves)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, "o1", "sup", "api", "holder left"); err != nil {
		t.Fatal(err)
	}
	if err := s.PhotoPassed(ctx, j, nil, "ok"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("finishing a cancelled order: %v", err)
	}
	o, _ := s.Get(ctx, "o1")
	if o.State != order.Cancelled {
		t.Fatalf("state = %s", o.State)
	}
}

func TestRescueAndStaleWorker(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	submit(t, s, "o1", false, holder(c.now()))
	stale, err := s.Claim(ctx, "w1", time.Minute, photoMoves)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Rescue(ctx, false); n != 0 {
		t.Fatalf("rescued a live lease")
	}
	c.add(2 * time.Minute)
	if n, _ := s.Rescue(ctx, false); n != 1 {
		t.Fatalf("expired lease not rescued")
	}
	fresh, err := s.Claim(ctx, "w2", time.Minute, photoMoves)
	if err != nil || fresh.ID != "o1" || fresh.Attempt != 2 {
		t.Fatalf("reclaim: %v %+v", err, fresh)
	}
	if err := s.PhotoPassed(ctx, stale, nil, "late"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale worker finished: %v", err)
	}
	if err := s.PhotoPassed(ctx, fresh, map[string][]byte{"portrait": []byte("png")}, "ok"); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Blob(ctx, "o1", "portrait"); err != nil || string(b) != "png" {
		t.Fatalf("blob: %q %v", b, err)
	}
}

func TestCardNumbersNeverReused(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	submit(t, s, "o1", false, holder(c.now()))
	moves := map[order.State]order.State{order.Queued: order.Encoding}
	j, err := s.Claim(ctx, "w", time.Minute, moves)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		if err := s.AllocateCard(ctx, j, "BB"); err != nil {
			t.Fatal(err)
		}
		if seen[j.CardNumber] || !order.ValidCardNumber(j.CardNumber) {
			t.Fatalf("card number %s reused or invalid", j.CardNumber)
		}
		seen[j.CardNumber] = true
		if err := s.RecordChip(ctx, j, fmt.Sprintf("04AABBCCDDEE%02X", i)); err != nil {
			t.Fatal(err)
		}
		failed, err := s.SpoilBlank(ctx, j, "verify failed", 3)
		if err != nil {
			t.Fatal(err)
		}
		if failed != (i == 2) {
			t.Fatalf("blank %d: failed=%v", i, failed)
		}
		if !failed {
			if j, err = s.Claim(ctx, "w", time.Minute, map[order.State]order.State{order.Ready: order.Encoding}); err != nil {
				t.Fatal(err)
			}
		}
	}
	nums, _ := s.CardNumbers(ctx, "o1")
	if len(nums) != 3 {
		t.Fatalf("card numbers = %v", nums)
	}
	for n, st := range nums {
		if st != "spoiled" {
			t.Fatalf("%s is %s", n, st)
		}
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	if len(notices) != 1 || notices[0].Type != "order.failed" {
		t.Fatalf("notices = %+v", notices)
	}
}

func TestBackupWhileWriting(t *testing.T) {
	s, c := open(t)
	for i := 0; i < 200; i++ {
		submit(t, s, fmt.Sprintf("o%03d", i), false, holder(c.now()))
	}
	// Orders keep arriving while the copy is made.
	stop := make(chan struct{})
	wrote := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				wrote <- n
				return
			default:
			}
			submit(t, s, fmt.Sprintf("w%05d", n), false, holder(c.now()))
			n++
		}
	}()
	dest := filepath.Join(t.TempDir(), "copy.db")
	var calls, lastDone, lastTotal int
	err := s.Backup(context.Background(), dest, func(done, total int) { calls, lastDone, lastTotal = calls+1, done, total })
	close(stop)
	<-wrote
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v; personal data must be owner-only", fi.Mode(), err)
	}
	if calls == 0 || lastDone != lastTotal || lastTotal == 0 {
		t.Fatalf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	cp, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	var check string
	if err := cp.r.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity of the copy: %q %v", check, err)
	}
	if o, err := cp.Get(context.Background(), "o199"); err != nil || o.State != order.Queued {
		t.Fatalf("backup copy lacks an order: %v", err)
	}
	if err := s.Backup(context.Background(), dest, nil); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
}

func BenchmarkClaimComplete(b *testing.B) {
	s, c := open(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		submit(b, s, fmt.Sprintf("o%09d", i), false, holder(c.now()))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j, err := s.Claim(ctx, "w", time.Minute, photoMoves)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.PhotoPassed(ctx, j, nil, "ok"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}

// Operators find an order by id, card number, chip UID or any part of the
// holder's names as intake recorded them; % and _ are matched literally.
func TestSearchFindsHolderNames(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	if _, _, err := s.Submit(ctx, NewOrder{ID: "o-1", Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`), CardType: "id06",
		HolderNames: []string{"Anna Ł. Svensson", "Anna Łukasz-Svensson"}, Approvals: holder(c.now()), Photo: []byte("jpeg")}, "api"); err != nil {
		t.Fatal(err)
	}
	submit(t, s, "o-2", false, holder(c.now()))
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"o-1", 1}, {"Ł. Sv", 1}, {"Łukasz-Svensson", 1}, {"anna", 1}, {"Anna%", 0}, {"Ann_", 0}, {"Bertil", 0},
	} {
		got, err := s.List(ctx, Filter{Search: tc.q})
		if err != nil || len(got) != tc.want {
			t.Errorf("search %q: %d orders (%v), want %d", tc.q, len(got), err, tc.want)
		}
	}
}

// Orders accepted before the holder_names column get their names from the
// stored document when the migration runs.
func TestHolderNamesMigrationFillsOldOrders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "station.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	doc := []byte(`{"holder":{"first_name":"Anna","last_name":"Svensson","print_name":"A. Svensson"}}`)
	if _, _, err := s.Submit(ctx, NewOrder{ID: "old-1", Supplier: "sup", BodyHash: "h", Doc: doc, CardType: "id06", Photo: []byte("j")}, "api"); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before the migration.
	if _, err := s.w.ExecContext(ctx, `ALTER TABLE orders DROP COLUMN holder_names; DELETE FROM schema_migrations WHERE version = '004_holder_names'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{"A. Svensson", "Anna Svensson"} {
		if got, err := s.List(ctx, Filter{Search: q}); err != nil || len(got) != 1 {
			t.Errorf("search %q after the migration: %d orders (%v)", q, len(got), err)
		}
	}
}

// Order ids are the supplier's: another supplier may use the same id. Each
// order gets a station-wide key (the plain id when it is free), resolves by
// (supplier, id), stays idempotent per supplier, and its notices name it by
// the supplier's id.
func TestOrderIDsAreUniquePerSupplier(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	n := func(supplier, hash string) NewOrder {
		return NewOrder{ID: "po-1", Supplier: supplier, BodyHash: hash, Doc: []byte(`{}`), CardType: "id06", Approvals: holder(c.now()), Photo: []byte("p")}
	}
	a, created, err := s.Submit(ctx, n("acme", "a"), "supplier:acme")
	if err != nil || !created {
		t.Fatalf("acme: %v created=%v", err, created)
	}
	b, created, err := s.Submit(ctx, n("bygg", "b"), "supplier:bygg")
	if err != nil || !created {
		t.Fatalf("bygg with acme's id: %v created=%v, want a new order", err, created)
	}
	if a.ID != "po-1" || b.ID == a.ID || a.SupplierOrderID != "po-1" || b.SupplierOrderID != "po-1" {
		t.Fatalf("keys %q %q, supplier ids %q %q", a.ID, b.ID, a.SupplierOrderID, b.SupplierOrderID)
	}
	// The key names print jobs and files: it keeps to the order id rule.
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`).MatchString(b.ID) {
		t.Fatalf("the second order's key %q breaks the order id rule", b.ID)
	}
	if again, created, err := s.Submit(ctx, n("bygg", "b"), "supplier:bygg"); err != nil || created || again.ID != b.ID {
		t.Fatalf("bygg resubmits: %v created=%v key %q", err, created, again.ID)
	}
	if _, _, err := s.Submit(ctx, n("bygg", "changed"), "supplier:bygg"); !errors.Is(err, ErrConflict) {
		t.Fatalf("bygg changes its order: %v, want ErrConflict", err)
	}
	for supplier, want := range map[string]string{"acme": a.ID, "bygg": b.ID} {
		o, err := s.SupplierOrder(ctx, supplier, "po-1")
		if err != nil || o.ID != want {
			t.Fatalf("%s's po-1: %v %+v", supplier, err, o)
		}
	}
	if _, err := s.SupplierOrder(ctx, "cement", "po-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a third supplier sees po-1: %v", err)
	}
	if list, _ := s.List(ctx, Filter{Supplier: "bygg"}); len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("bygg's list: %+v", list)
	}
	if found, _ := s.List(ctx, Filter{Search: "po-1"}); len(found) != 2 {
		t.Fatalf("operators searching po-1 find %d orders, want both", len(found))
	}
	if _, err := s.Cancel(ctx, b.ID, "bygg", "supplier:bygg", "no longer needed"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, a.ID); got.State == order.Cancelled {
		t.Fatal("bygg cancelled acme's order")
	}
	notices, _ := s.OrderNotices(ctx, b.ID)
	var payload struct {
		OrderID string `json:"order_id"`
	}
	if len(notices) != 1 || json.Unmarshal(notices[0].Payload, &payload) != nil || payload.OrderID != "po-1" || notices[0].Supplier != "bygg" {
		t.Fatalf("bygg's notice: %+v payload %s", notices, notices[0].Payload)
	}
}
