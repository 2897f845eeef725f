// Package queuetest opens a real store for tests and puts orders in the
// states tests start from, the way the intake and the pipeline would.
package queuetest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
)

// Open opens a store (SQLite on disk) in a temporary directory, closed when
// the test ends.
func Open(t testing.TB) *queue.Store {
	t.Helper()
	s, err := queue.Open(filepath.Join(t.TempDir(), "station.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Approved is a holder's approval a minute ago.
func Approved() []order.Approval {
	return []order.Approval{{Kind: order.KindHolder, Method: order.MethodBankID, At: time.Now().Add(-time.Minute)}}
}

// NeedsFix puts an order of the supplier "dev" in needs_fix the way the
// photo worker does, with one reason (blurry).
func NeedsFix(t testing.TB, s *queue.Store, id string) {
	t.Helper()
	ctx := context.Background()
	_, _, err := s.Submit(ctx, queue.NewOrder{ID: id, Supplier: "dev", BodyHash: "h-" + id,
		Doc: []byte(`{"holder":{"first_name":"Anna","last_name":"Svensson","print_name":"Anna Svensson"}}`), CardType: "id06",
		HolderNames: []string{"Anna Svensson", "Anna Svensson"},
		Approvals:   Approved(), Photo: []byte("jpeg")}, "supplier:dev")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, "test-worker", time.Minute, map[order.State]order.State{order.Queued: order.Imaging})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.NeedsFixPhoto(ctx, c, []order.Reason{{Code: "blurry", MessageEN: "The photo is blurry.", MessageSV: "Fotot är suddigt."}}); err != nil {
		t.Fatal(err)
	}
}

// Produced drives an order of the supplier "dev" through the store the way
// the pipeline does, up to produced, with the given delivery street.
func Produced(t testing.TB, s *queue.Store, id string, express bool, street string) *order.Record {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{
		"holder":   map[string]string{"first_name": "Anna", "last_name": "Svensson", "print_name": "Anna Svensson " + id},
		"delivery": map[string]string{"name": "Bygg AB", "street": street, "postal_code": "111 22", "city": "Stockholm", "country": "SE"},
	})
	uid := "04AABB" + strings.ToUpper(id[len(id)-2:])
	c := toPrinting(t, s, queue.NewOrder{ID: id, Supplier: "dev", BodyHash: "h-" + id, Doc: doc, CardType: "id06", Express: express,
		HolderNames: []string{"Anna Svensson " + id, "Anna Svensson"}, Approvals: Approved(), Photo: []byte("jpeg")}, uid)
	if err := s.Produced(context.Background(), c, "printed"); err != nil {
		t.Fatal(err)
	}
	return get(t, s, id)
}

// Printing puts an order of the supplier "dev" in printing with a card and
// chip bound, the way the device worker leaves one whose print cannot go on.
func Printing(t testing.TB, s *queue.Store, id string) *order.Record {
	t.Helper()
	toPrinting(t, s, queue.NewOrder{ID: id, Supplier: "dev", BodyHash: "h-" + id,
		Doc: []byte(`{"holder":{"first_name":"Anna","last_name":"Svensson","print_name":"Anna Svensson"}}`), CardType: "id06",
		HolderNames: []string{"Anna Svensson", "Anna Svensson"}, Approvals: Approved(), Photo: []byte("jpeg")}, "04A1B2C3")
	return get(t, s, id)
}

// toPrinting submits n and takes it through the photo stage, a card number,
// the chip uid and its encoding, as the pipeline would.
func toPrinting(t testing.TB, s *queue.Store, n queue.NewOrder, uid string) *queue.Claim {
	t.Helper()
	c := toChip(t, s, n, uid)
	if err := s.Encoded(context.Background(), c, "01", "2031-11-22", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	return c
}

// toChip takes a new order to the encoder with a card number and a chip
// bound to it, before anything is written to the chip.
func toChip(t testing.TB, s *queue.Store, n queue.NewOrder, uid string) *queue.Claim {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.Submit(ctx, n, "supplier:"+n.Supplier); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, "w", time.Minute, map[order.State]order.State{order.Queued: order.Imaging})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PhotoPassed(ctx, c, map[string][]byte{"portrait": []byte("png")}, "ok"); err != nil {
		t.Fatal(err)
	}
	if c, err = s.Claim(ctx, "w", time.Minute, map[order.State]order.State{order.Ready: order.Encoding}); err != nil {
		t.Fatal(err)
	}
	if err := s.AllocateCard(ctx, c, "BB"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordChip(ctx, c, uid); err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t testing.TB, s *queue.Store, id string) *order.Record {
	t.Helper()
	o, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Cancelled gives the supplier an order that was cancelled, and with it one
// order.cancelled notice in the outbox.
func Cancelled(t testing.TB, s *queue.Store, supplier, id string) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.Submit(ctx, queue.NewOrder{ID: id, Supplier: supplier, BodyHash: "h", Doc: []byte(`{}`), CardType: "id06",
		Photo: []byte("jpeg")}, "supplier:"+supplier); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, id, supplier, "supplier:"+supplier, "test"); err != nil {
		t.Fatal(err)
	}
}
