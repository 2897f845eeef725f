package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"id06/lane"
	"id06/order"
	"id06/printer"
)

// An operator's pause of the station is never ended by a device
// recovering: the lane finishes the card it held through the printer
// fault, and no lane starts another until the operator resumes.
func TestOperatorPauseSurvivesDeviceRecovery(t *testing.T) {
	st, sim := faultyPrinter(t, "media-empty", nil)
	st.submit(t, "held-1")
	st.waitLane(t, 0, lane.Paused, "the printer fault")
	st.p.Pause("lunch break")
	st.submit(t, "next-1")
	st.waitState(t, "next-1", order.Ready)
	sim.ClearFault()
	st.waitState(t, "held-1", order.Produced)
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if paused, msg := st.p.Paused(); !paused || msg != "lunch break" {
			t.Fatalf("the printer recovering ended the operator's pause: paused=%v %q", paused, msg)
		}
		if o, _ := st.store.Get(t.Context(), "next-1"); o.State != order.Ready {
			t.Fatalf("a new card started while the station is paused: %s", o.State)
		}
	}
	st.p.Resume()
	st.waitState(t, "next-1", order.Produced)
}

// Lane b runs out of cards: it pauses alone with the reason while lane a
// makes the rest; resuming b (a refill) puts it back to work.
func TestLaneFaultPausesOnlyThatLane(t *testing.T) {
	st := newLanes(t, []string{"a=sim,sim:print-time=50ms", "b=sim,sim:cards=1:print-time=50ms"}, nil)
	st.run(t)
	for i := range 6 {
		st.submit(t, fmt.Sprint("o-", i))
	}
	s := st.waitLane(t, 1, lane.Paused, "lane b out of cards")
	if s.Fault != "transport" || !strings.Contains(s.Reason, "Out of cards") || s.Blanks != 0 {
		t.Fatalf("lane b = %+v, want paused out of cards", s)
	}
	byLane := map[string]int{}
	for i := range 6 {
		o := st.waitState(t, fmt.Sprint("o-", i), order.Produced)
		byLane[o.Lane]++
	}
	if byLane["b"] != 1 || byLane["a"] != 5 {
		t.Fatalf("cards by lane %v, want b 1 (its hopper), a the other 5", byLane)
	}
	if paused, _ := st.p.Paused(); paused {
		t.Fatal("one lane out of cards paused the station")
	}
	if err := st.p.ResumeLane(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	if s := st.waitLane(t, 1, lane.Idle, "lane b resumed"); s.Blanks != 1 {
		t.Fatalf("lane b after the resume = %+v, want its hopper refilled", s)
	}
	st.p.DrainLane("a")
	st.waitLane(t, 0, lane.Off, "lane a drained")
	st.submit(t, "after-refill")
	if o := st.waitState(t, "after-refill", order.Produced); o.Lane != "b" {
		t.Fatalf("after-refill made on lane %q, want b (a is drained)", o.Lane)
	}
}

// A card jams in lane a: the lane pauses with the card in its hand, no
// other lane takes that order, and an operator spoils it: the number is
// retired, the card goes to a's reject bin, and lane b makes the order
// on a new card.
func TestSpoilCardInPausedLane(t *testing.T) {
	st := newLanes(t, []string{"a=sim,sim:jam-after=1", "b=sim,sim"}, nil)
	st.p.DrainLane("b")
	st.run(t)
	st.submit(t, "first")
	st.waitState(t, "first", order.Produced)
	st.submit(t, "jammed")
	s := st.waitLane(t, 0, lane.Paused, "the jam")
	if s.Card == nil || s.Card.Order != "jammed" || !strings.Contains(s.Reason, "jam") {
		t.Fatalf("lane a = %+v, want paused on a jam with 'jammed' in hand", s)
	}
	before, _ := st.store.Get(t.Context(), "jammed")
	if _, err := st.p.SpoilLane(t.Context(), "b", "op", "nothing there"); err == nil {
		t.Fatal("spoiled a card in a lane that holds none")
	}
	if err := st.p.ResumeLane(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if o, _ := st.store.Get(t.Context(), "jammed"); o.Lane != "a" || o.State != order.Printing {
		t.Fatalf("another lane took the card in a's hand: lane %q, %s", o.Lane, o.State)
	}
	o, err := st.p.SpoilLane(t.Context(), "a", "op", "card stuck under the print head")
	if err != nil {
		t.Fatal(err)
	}
	if o.State != order.Ready || o.CardNumber != "" {
		t.Fatalf("after the spoil: %s card %q", o.State, o.CardNumber)
	}
	done := st.waitState(t, "jammed", order.Produced)
	if done.Lane != "b" || done.CardNumber == before.CardNumber {
		t.Fatalf("made on lane %q as card %s; want lane b on a new card (not %s)", done.Lane, done.CardNumber, before.CardNumber)
	}
	if nums, _ := st.store.CardNumbers(t.Context(), "jammed"); nums[before.CardNumber] != "spoiled" {
		t.Errorf("the jammed card's number is %q, want spoiled", nums[before.CardNumber])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, rejected := st.sim(0).Counts(); rejected == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spoiled card never reached lane a's reject bin")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := st.lanes[0].Snapshot(t.Context()); s.State != lane.Paused || s.Card != nil || s.Spoiled != 1 {
		t.Fatalf("lane a after the spoil = %+v: still paused, empty-handed, one spoiled", s)
	}
}

// The station dies while a card prints; the restarted station asks the
// printer about the recorded job before anything else and does not print
// the card again.
func TestRestartAsksThePrinterFirst(t *testing.T) {
	flags := []string{"a=sim,sim:print-time=400ms"}
	st := newLanes(t, flags, nil)
	stop := st.run(t)
	st.submit(t, "crash-1")
	st.waitState(t, "crash-1", order.Printing)
	var o *order.Record
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		o, _ = st.store.Get(t.Context(), "crash-1")
		if o.PrintJob != "" && st.sim(0).Submitted(o.PrintJob) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the card never reached the printer")
		}
	}
	stop() // mid-print: the simulated printer goes on printing meanwhile
	if _, err := st.store.Rescue(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	st.open(t, flags)
	st.run(t)
	done := st.waitState(t, "crash-1", order.Produced)
	if n := st.sim(0).Submitted(done.PrintJob); n != 1 {
		t.Fatalf("the card's job was submitted %d times, want 1", n)
	}
	if done.CardNumber != o.CardNumber || done.PrintJob != o.PrintJob {
		t.Fatalf("produced as %s/%s, want the card in hand %s/%s", done.CardNumber, done.PrintJob, o.CardNumber, o.PrintJob)
	}
	if !errors.Is(st.p.PauseLane("zz", ""), ErrNoLane) {
		t.Error("an unknown lane was paused")
	}
	if jobs := st.sim(0).Jobs(); len(jobs) != 1 || jobs[0].ID != printer.JobID("crash-1", done.CardNumber) {
		t.Fatalf("printer made %+v", jobs)
	}
	st.wantFace(t, "crash-1") // the previews of a card taken up in printing too
}
