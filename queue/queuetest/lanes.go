package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
)

// ready submits an order and passes its photo.
func ready(t *testing.T, s *queue.Store, c *clock, id string, express bool) {
	t.Helper()
	Submit(t, s, id, express, Holder(c.now()))
	j, err := s.Claim(context.Background(), "photo", time.Minute, photoMoves)
	if err != nil || j.ID != id {
		t.Fatalf("photo claim: %v %v", j, err)
	}
	if err := s.PhotoPassed(context.Background(), j, nil, "ok"); err != nil {
		t.Fatal(err)
	}
}

// A lane takes the card in its own hand before anything new; a card in
// another lane's hand, even a lane of the same name on another station, is
// never its to take; ready orders go express first.
func testClaimLane(t *testing.T, e *env) {
	s, c := e.first()
	other := e.open("st-b")
	ctx := context.Background()
	ready(t, s, c, "o1", false)
	c.add(time.Minute)
	ready(t, s, c, "o2", false)
	c.add(time.Minute)
	ready(t, s, c, "x3", true)
	c.add(time.Minute)
	ready(t, s, c, "o4", false)

	a, err := s.ClaimLane(ctx, "lane-a", "a", time.Minute)
	if err != nil || a.ID != "x3" || a.State != order.Encoding || a.Lane != "a" || a.Station != "st-a" {
		t.Fatalf("lane a's first claim = %+v, %v; want the express order, encoding on st-a's lane a", a, err)
	}
	if err := s.AllocateCard(ctx, a, "BB"); err != nil {
		t.Fatal(err)
	}
	// Lane a crashes (its station restarts and takes its leases back); no
	// other lane may take its card.
	if _, err := s.Rescue(ctx, true); err != nil {
		t.Fatal(err)
	}
	ob, err := other.ClaimLane(ctx, "lane-a", "a", time.Minute)
	if err != nil || ob.ID != "o1" || ob.Station != "st-b" {
		t.Fatalf("st-b's lane a's claim = %+v, %v; want o1 (x3 is in st-a's lane a)", ob, err)
	}
	b, err := s.ClaimLane(ctx, "lane-b", "b", time.Minute)
	if err != nil || b.ID != "o2" {
		t.Fatalf("lane b's claim = %+v, %v; want o2 (x3 is in lane a's hand)", b, err)
	}
	a2, err := s.ClaimLane(ctx, "lane-a2", "a", time.Minute)
	if err != nil || a2.ID != "x3" || a2.CardNumber == "" {
		t.Fatalf("lane a after its restart = %+v, %v; want its own card x3 first", a2, err)
	}
	if _, err := s.ClaimLane(ctx, "lane-c", "c", time.Minute); err != nil {
		t.Fatal(err) // o4
	}
	if _, err := s.ClaimLane(ctx, "lane-d", "d", time.Minute); !errors.Is(err, queue.ErrNothingToClaim) {
		t.Fatalf("lane d with nothing left: %v", err)
	}
	ev, _ := s.Events(ctx, "x3")
	if last := ev[len(ev)-1].Note; last != "claimed on lane a (attempt 3)" {
		t.Errorf("last event of x3 = %q", last)
	}
}

// Lanes of two stations claim from one queue at once: every ready order
// goes to exactly one lane, none is left behind.
func testLanesClaimOnceAcrossStations(t *testing.T, e *env) {
	a, c := e.first()
	b := e.open("st-b")
	ctx := context.Background()
	const orders = 30
	for i := range orders {
		ready(t, a, c, fmt.Sprintf("o%03d", i), i%5 == 0)
	}
	var workers []claimer
	for l := range 6 {
		s := []*queue.Store{a, b}[l%2]
		lane := fmt.Sprintf("l%d", l/2)
		workers = append(workers, claimer{name: s.Station() + "/" + lane,
			claim:  func() (*queue.Claim, error) { return s.ClaimLane(ctx, "lane-"+lane, lane, time.Minute) },
			finish: func(j *queue.Claim) error { return s.Produced(ctx, j, "made") }})
	}
	claims := claimAll(t, workers, orders)
	for id, by := range claims {
		o, _ := a.Get(ctx, id)
		if o.State != order.Produced || o.Station+"/"+o.Lane != by[0] {
			t.Errorf("%s: state %s made on %s/%s, claimed by %v", id, o.State, o.Station, o.Lane, by)
		}
	}
}

// The print is recorded before it is submitted, once per job; spoiling the
// blank drops the record with the card number and frees the order for any
// lane.
func testRecordPrintAndSpoil(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	ready(t, s, c, "o1", false)
	cl, err := s.ClaimLane(ctx, "w", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AllocateCard(ctx, cl, "BB"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.RecordPrint(ctx, cl, "ipp://p1:631/ipp/print", "o1_"+cl.CardNumber); err != nil {
			t.Fatal(err)
		}
	}
	o, _ := s.Get(ctx, "o1")
	if o.PrintPrinter != "ipp://p1:631/ipp/print" || o.PrintJob != "o1_"+cl.CardNumber || o.Lane != "a" {
		t.Fatalf("recorded print = %q %q on lane %q", o.PrintPrinter, o.PrintJob, o.Lane)
	}
	n := 0
	ev, _ := s.Events(ctx, "o1")
	for _, e := range ev {
		if e.Note == "print job o1_"+cl.CardNumber+" on printer ipp://p1:631/ipp/print (lane a)" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d print records in the audit trail, want 1", n)
	}
	failed, err := s.SpoilBlank(ctx, cl, "chip broke", 3)
	if err != nil || failed {
		t.Fatal(failed, err)
	}
	o, _ = s.Get(ctx, "o1")
	if o.State != order.Ready || o.Lane != "" || o.PrintJob != "" || o.PrintPrinter != "" || o.CardNumber != "" {
		t.Fatalf("after a spoiled blank: %+v", o)
	}
}

// An operator spoils the card in a paused lane's hand: the number is
// retired, the order is ready for another lane, and the lane's worker has
// lost its claim. Only the station whose printer holds the card spoils it.
func testSpoilInHand(t *testing.T, e *env) {
	s, c := e.first()
	other := e.open("st-b")
	ctx := context.Background()
	ready(t, s, c, "o1", false)
	cl, err := s.ClaimLane(ctx, "w", "b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AllocateCard(ctx, cl, "BB"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordChip(ctx, cl, "04A1B2"); err != nil {
		t.Fatal(err)
	}
	number := cl.CardNumber
	if _, err := s.SpoilInHand(ctx, "o1", "a", "op", "jam"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("spoiling from the wrong lane: %v", err)
	}
	if _, err := other.SpoilInHand(ctx, "o1", "b", "op", "jam"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("spoiling from another station's lane of the same name: %v", err)
	}
	o, err := s.SpoilInHand(ctx, "o1", "b", "op", "card jammed under the print head")
	if err != nil {
		t.Fatal(err)
	}
	if o.State != order.Ready || o.Lane != "" || o.CardNumber != "" || o.BlanksSpoiled != 1 || o.LeaseOwner != "" {
		t.Fatalf("after the spoil: %+v", o)
	}
	if nums, _ := s.CardNumbers(ctx, "o1"); nums[number] != "spoiled" {
		t.Errorf("card number %s is %q, want spoiled", number, nums[number])
	}
	if err := s.Extend(ctx, cl, time.Minute); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("the lane's worker still holds the order: %v", err)
	}
	if _, err := s.SpoilInHand(ctx, "o1", "b", "op", "again"); !errors.Is(err, queue.ErrState) {
		t.Errorf("spoiling a ready order: %v", err)
	}
	next, err := other.ClaimLane(ctx, "w2", "c", time.Minute)
	if err != nil || next.ID != "o1" {
		t.Fatalf("another lane's claim = %+v, %v", next, err)
	}
}
