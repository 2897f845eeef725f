package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"id06/order"
)

var deviceMovesTest = map[order.State]order.State{order.Ready: order.Encoding, order.Encoding: order.Encoding, order.Printing: order.Printing}

// produce takes an approved order through every stage the way the pipeline does.
func produce(t *testing.T, s *Store, id string, express bool, approvedAt time.Time) *order.Record {
	t.Helper()
	ctx := context.Background()
	j := printing(t, s, id, express, approvedAt)
	if err := s.Produced(ctx, j, "printed"); err != nil {
		t.Fatal(err)
	}
	o, err := s.Get(ctx, id)
	if err != nil || o.State != order.Produced {
		t.Fatalf("produce %s: %v state %v", id, err, o.State)
	}
	return o
}

func TestReproduceRetiresTheCard(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	o := produce(t, s, "o1", false, c.now())
	old := o.CardNumber
	if _, err := s.Reproduce(ctx, "o1", "operator:eva", "print smudged"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "o1")
	if got.State != order.Ready || got.CardNumber != "" || got.ChipUID != "" || got.SealedSecrets != nil {
		t.Fatalf("after reproduce: state %s card %q chip %q", got.State, got.CardNumber, got.ChipUID)
	}
	numbers, _ := s.CardNumbers(ctx, "o1")
	if numbers[old] != "spoiled" {
		t.Fatalf("old card %s status %q, want spoiled", old, numbers[old])
	}
	ev, _ := s.Events(ctx, "o1")
	if last := ev[len(ev)-1]; last.Actor != "operator:eva" || last.State != order.Ready {
		t.Fatalf("last event %+v", last)
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	if n := notices[len(notices)-1]; n.Type != "order.card_spoiled" {
		t.Fatalf("last notice %s", n.Type)
	}
	if _, err := s.Reproduce(ctx, "o1", "operator:eva", "again"); !errors.Is(err, ErrState) {
		t.Fatalf("reproduce of a ready order: %v, want ErrState", err)
	}
}

func TestShipmentLifecycle(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	produce(t, s, "o1", false, c.now())
	produce(t, s, "o2", false, c.now())
	un, err := s.Unshipped(ctx)
	if err != nil || len(un) != 2 {
		t.Fatalf("unshipped = %d, %v", len(un), err)
	}
	parcel := func(id string, orders ...string) order.Shipment {
		sh := order.Shipment{ID: id, Address: []string{"Storgatan 1"}}
		for _, o := range orders {
			sh.Cards = append(sh.Cards, order.ShipmentCard{OrderID: o})
		}
		return sh
	}
	if err := s.CreateShipments(ctx, []order.Shipment{parcel("SHP-1", "o1", "o2")}, "operator:eva"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateShipments(ctx, []order.Shipment{parcel("SHP-2", "o1")}, "operator:eva"); !errors.Is(err, ErrState) {
		t.Fatalf("packing a packed card again: %v, want ErrState", err)
	}
	if _, err := s.Reproduce(ctx, "o2", "operator:eva", "scratched"); err != nil {
		t.Fatal(err)
	}
	sh, orders, err := s.Shipment(ctx, "SHP-1")
	if err != nil || len(orders) != 1 || orders[0].ID != "o1" {
		t.Fatalf("shipment after reproducing o2: %d orders, %v", len(orders), err)
	}
	if len(sh.Address) != 1 || sh.Address[0] != "Storgatan 1" || sh.CreatedBy != "operator:eva" {
		t.Fatalf("shipment read back: %+v", sh)
	}
	n, err := s.MarkShipped(ctx, "SHP-1", "operator:eva")
	if err != nil || n != 1 {
		t.Fatalf("mark shipped: %d, %v", n, err)
	}
	o1, _ := s.Get(ctx, "o1")
	if o1.State != order.Shipped {
		t.Fatalf("o1 state %s", o1.State)
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	var body map[string]any
	json.Unmarshal(notices[len(notices)-1].Payload, &body)
	if body["type"] != "order.shipped" || body["shipment_id"] != "SHP-1" || body["card_number"] != o1.CardNumber {
		t.Fatalf("shipped notice %v", body)
	}
	if _, err := s.MarkShipped(ctx, "SHP-1", "operator:eva"); !errors.Is(err, ErrState) {
		t.Fatalf("shipping twice: %v", err)
	}
	if _, err := s.MarkShipped(ctx, "SHP-404", "operator:eva"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown shipment: %v", err)
	}
}

// A packing run is one transaction: when one parcel cannot be packed, none
// is, and every card stays unshipped for the next run.
func TestPackingRunIsAtomic(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	for _, id := range []string{"o1", "o2", "o3"} {
		produce(t, s, id, false, c.now())
	}
	run := []order.Shipment{
		{ID: "SHP-A", Address: []string{"Storgatan 1"}, Cards: []order.ShipmentCard{{OrderID: "o1"}, {OrderID: "o2"}}},
		{ID: "SHP-B", Address: []string{"Kungsgatan 9"}, Cards: []order.ShipmentCard{{OrderID: "o3"}, {OrderID: "no-such-order"}}},
	}
	if err := s.CreateShipments(ctx, run, "operator:eva"); !errors.Is(err, ErrState) {
		t.Fatalf("run with a bad parcel: %v, want ErrState", err)
	}
	if un, _ := s.Unshipped(ctx); len(un) != 3 {
		t.Fatalf("%d unshipped after a failed run, want all 3", len(un))
	}
	if list, _ := s.Shipments(ctx, 10); len(list) != 0 {
		t.Fatalf("%d shipments stored by a failed run", len(list))
	}
	run[1].Cards = run[1].Cards[:1]
	if err := s.CreateShipments(ctx, run, "operator:eva"); err != nil {
		t.Fatal(err)
	}
	orders, err := s.ShipmentOrders(ctx, []string{"SHP-A", "SHP-B"})
	if err != nil || len(orders) != 3 || orders[0].ShipmentID != "SHP-A" || orders[2].ShipmentID != "SHP-B" {
		t.Fatalf("orders of both parcels: %d, %v", len(orders), err)
	}
}

func TestExpressFigures(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	start := c.now()
	produce(t, s, "on-time", true, start)
	submit(t, s, "late", true, holder(start))
	submit(t, s, "standard", false, holder(start))
	open, err := s.ExpressOpen(ctx)
	if err != nil || len(open) != 1 || open[0].ID != "late" {
		t.Fatalf("express open = %v, %v", open, err)
	}
	if n, _ := s.ExpressMissed(ctx); n != 0 {
		t.Fatalf("missed before the deadline = %d", n)
	}
	c.add(order.ExpressWindow + time.Minute)
	if n, _ := s.ExpressMissed(ctx); n != 1 {
		t.Fatalf("missed after the deadline = %d, want 1 (the one still open)", n)
	}
	if n, _ := s.ProducedSince(ctx, start); n != 1 {
		t.Fatalf("produced since start = %d", n)
	}
	before, _ := s.Changes(ctx)
	if _, err := s.Cancel(ctx, "standard", "", "operator:eva", "withdrawn"); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Changes(ctx); after == before {
		t.Fatal("Changes did not move after a cancel")
	}
}

func TestDueNoticesForSkipsOtherSuppliers(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	produce(t, s, "o1", false, c.now())
	if due, _ := s.DueNoticesFor(ctx, []string{"someone-else"}, 10); len(due) != 0 {
		t.Fatalf("due for another supplier: %d", len(due))
	}
	due, err := s.DueNoticesFor(ctx, []string{"someone-else", "sup"}, 10)
	if err != nil || len(due) != 1 || due[0].Type != "order.produced" {
		t.Fatalf("due = %v, %v", due, err)
	}
}

func TestUsersAndSessions(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	if err := s.AddUser(ctx, "eva", RoleOperator, []byte("hash")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, role string }{{"eva", RoleQA}, {"bad name", RoleQA}, {"olle", "root"}} {
		if err := s.AddUser(ctx, tc.name, tc.role, []byte("h")); err == nil {
			t.Errorf("AddUser(%q, %q) accepted", tc.name, tc.role)
		}
	}
	if _, err := s.CreateSession(ctx, "cookie", "nobody", "csrf", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session for an unknown user: %v", err)
	}
	if _, err := s.CreateSession(ctx, "cookie", "eva", "csrf", time.Hour); err != nil {
		t.Fatal(err)
	}
	sess, err := s.LookupSession(ctx, "cookie")
	if err != nil || sess.User != "eva" || sess.Role != RoleOperator || sess.CSRF != "csrf" {
		t.Fatalf("lookup = %+v, %v", sess, err)
	}
	if _, err := s.LookupSession(ctx, "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown cookie: %v", err)
	}
	c.add(2 * time.Hour)
	if _, err := s.LookupSession(ctx, "cookie"); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("expired cookie: %v", err)
	}
	s.CreateSession(ctx, "cookie2", "eva", "c2", time.Hour)
	if err := s.SetPassword(ctx, "eva", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, "cookie2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session survived a password change: %v", err)
	}
	s.Audit(ctx, "operator:eva", "pause", "lunch")
	log, _ := s.AuditLog(ctx, 10)
	if len(log) != 1 || log[0].Actor != "operator:eva" || log[0].Action != "pause" {
		t.Fatalf("audit log %+v", log)
	}
}

// BenchmarkChanges is the poll every open operator page makes each second.
func BenchmarkChanges(b *testing.B) {
	s, c := open(b)
	ctx := context.Background()
	for i := range 5000 {
		id := fmt.Sprintf("o-%05d", i)
		submit(b, s, id, false, holder(c.now()))
		if _, err := s.Cancel(ctx, id, "", "op", "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Changes(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// toPrinting takes an order to printing with a chip bound, as the device
// worker leaves it when the printer will not take the job.
func toPrinting(t *testing.T, s *Store, id string, c *clock) *Claim {
	return printing(t, s, id, false, c.now())
}

// printing submits an approved order and takes it through the photo stage,
// a card number, the chip and its encoding, as the pipeline would.
func printing(t *testing.T, s *Store, id string, express bool, approvedAt time.Time) *Claim {
	t.Helper()
	j := atChip(t, s, id, express, approvedAt)
	if err := s.Encoded(context.Background(), j, "1234", "2031-11-22", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	return j
}

// atChip submits an approved order and takes it to the encoder with a card
// number and a chip bound to it.
func atChip(t *testing.T, s *Store, id string, express bool, approvedAt time.Time) *Claim {
	t.Helper()
	ctx := context.Background()
	submit(t, s, id, express, holder(approvedAt))
	j, err := s.Claim(ctx, "w", time.Minute, photoMoves)
	if err != nil || j.ID != id {
		t.Fatalf("claim photo: %v", err)
	}
	if err := s.PhotoPassed(ctx, j, map[string][]byte{"portrait": []byte("png")}, "ok"); err != nil {
		t.Fatal(err)
	}
	if j, err = s.Claim(ctx, "w", time.Minute, deviceMovesTest); err != nil {
		t.Fatal(err)
	}
	if err := s.AllocateCard(ctx, j, "BB"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordChip(ctx, j, "04A1B2C3"); err != nil {
		t.Fatal(err)
	}
	return j
}

// An order stuck at the reader or printer can be stopped by an operator:
// its blank is retired with the card number, the order fails with the
// operator's reason, the supplier is told, and a worker still holding it
// loses its claim. Orders elsewhere are not touched by this action.
func TestOperatorStopsAnOrderInTheDevice(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	j := toPrinting(t, s, "stuck-1", c)
	card := j.CardNumber
	o, err := s.SpoilAndFail(ctx, "stuck-1", "operator:eva", "printer refuses the job")
	if err != nil {
		t.Fatal(err)
	}
	if o.State != order.Failed || o.CardNumber != "" || o.ChipUID != "" || o.BlanksSpoiled != 1 {
		t.Fatalf("after stop: state %s card %q chip %q spoiled %d", o.State, o.CardNumber, o.ChipUID, o.BlanksSpoiled)
	}
	if numbers, _ := s.CardNumbers(ctx, "stuck-1"); numbers[card] != "spoiled" {
		t.Fatalf("card %s: %q, want spoiled", card, numbers[card])
	}
	if n, _ := s.SpoiledCount(ctx, time.Time{}); n != 1 {
		t.Fatalf("%d spoiled blanks recorded, want 1", n)
	}
	ev, _ := s.Events(ctx, "stuck-1")
	if last := ev[len(ev)-1]; last.Actor != "operator:eva" || last.State != order.Failed || !strings.Contains(last.Note, "printer refuses the job") || !strings.Contains(last.Note, card) {
		t.Fatalf("last event %+v", last)
	}
	if notices, _ := s.OrderNotices(ctx, "stuck-1"); notices[len(notices)-1].Type != "order.failed" {
		t.Fatalf("last notice %s", notices[len(notices)-1].Type)
	}
	if err := s.Produced(ctx, j, "printed"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("the worker's claim survived the stop: %v", err)
	}
	submit(t, s, "queued-1", false, holder(c.now()))
	if _, err := s.SpoilAndFail(ctx, "queued-1", "operator:eva", "x"); !errors.Is(err, ErrState) {
		t.Fatalf("stop of a queued order: %v, want ErrState (cancel it instead)", err)
	}
	// Retried, it starts over on a new blank with a new number.
	if _, err := s.Retry(ctx, "stuck-1", "operator:eva", "fixed"); err != nil {
		t.Fatal(err)
	}
}

// A stage that refuses an order fails it at once with the reason, retiring
// the blank in hand; the order is not offered to a worker again.
func TestRefusedOrderFailsInsteadOfLooping(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	j := toPrinting(t, s, "refused-1", c)
	card := j.CardNumber
	if err := s.FailSpoiled(ctx, j, "the printer refused the job: bad id"); err != nil {
		t.Fatal(err)
	}
	o, _ := s.Get(ctx, "refused-1")
	if o.State != order.Failed || o.CardNumber != "" {
		t.Fatalf("state %s card %q", o.State, o.CardNumber)
	}
	if numbers, _ := s.CardNumbers(ctx, "refused-1"); numbers[card] != "spoiled" {
		t.Fatalf("card %s: %q", card, numbers[card])
	}
	c.add(time.Hour)
	if n, err := s.Rescue(ctx, false); err != nil || n != 0 {
		t.Fatalf("rescue found %d (%v)", n, err)
	}
	if _, err := s.Claim(ctx, "w", time.Minute, deviceMovesTest); !errors.Is(err, ErrNothingToClaim) {
		t.Fatalf("a failed order was claimed again: %v", err)
	}
}
