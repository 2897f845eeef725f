package lane

import (
	"context"
	"testing"
	"time"

	"id06/printer"
)

func simLane(t *testing.T, printerSpec string) *Lane {
	t.Helper()
	c := Config{Name: "b", Reader: "sim", Printer: printerSpec, Transport: "sim"}
	d, err := Open(c, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return New(c, d)
}

func ready(l *Lane) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	return l.WaitReady(ctx) == nil
}

func running(l *Lane) bool { return l.Running() }

func TestLaneStates(t *testing.T) {
	ctx := context.Background()
	l := simLane(t, "sim:cards=1")
	clock := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	snap := func() Snapshot { return l.Snapshot(ctx) }

	if s := snap(); s.State != Idle || s.Blanks != 1 || s.Card != nil || s.Transport != "sim" {
		t.Fatalf("new lane = %+v", s)
	}
	changed := l.Changed()
	l.Take(Card{Order: "o1", Step: "feeding"})
	select {
	case <-changed:
	default:
		t.Fatal("taking a card did not signal a change")
	}
	l.Step("encoding", "BB-0001")
	if s := snap(); s.State != Working || s.Card == nil || s.Card.Step != "encoding" || s.Card.CardNumber != "BB-0001" {
		t.Fatalf("lane with a card = %+v", s)
	}

	// A device fault pauses the lane with its reason; the card stays.
	l.Fault("transport", "Out of cards: refill the card hopper", nil)
	if s := snap(); s.State != Paused || s.Reason != "Out of cards: refill the card hopper" || s.Card == nil || s.LastFaultAt != clock || s.Fault != "transport" {
		t.Fatalf("faulted lane = %+v", s)
	}
	if running(l) || ready(l) {
		t.Fatal("a faulted lane runs")
	}
	// An operator pause on top: the device recovering does not end it.
	l.Pause("")
	l.Fault("printer", "Printer offline", func(context.Context) bool { return true })
	l.Recheck(ctx)
	if s := snap(); s.State != Paused || s.Reason != "Paused by an operator" {
		t.Fatalf("device recovered under an operator's pause = %+v", s)
	}
	if running(l) {
		t.Fatal("a device recovering ended the operator's pause")
	}
	if err := l.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if !running(l) || !ready(l) {
		t.Fatal("resumed lane does not run")
	}
	if s := snap(); s.LastFault != "Printer offline" || s.Reason != "" {
		t.Fatalf("resumed lane = %+v: the last fault stays for the operator", s)
	}

	// Drain: the card in hand goes on; no new card; off once empty.
	l.Drain()
	if !running(l) || ready(l) {
		t.Fatal("a draining lane must finish its card and take no new one")
	}
	l.Done(true, false)
	if s := snap(); s.State != Off || s.CardsThisHour != 1 {
		t.Fatalf("drained lane = %+v", s)
	}
	clock = clock.Add(30 * time.Minute)
	if err := l.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	l.Take(Card{Order: "o2"})
	l.Done(false, true)
	l.Take(Card{Order: "o3"})
	l.Done(true, false)
	if s := snap(); s.State != Idle || s.CardsThisHour != 2 || s.Spoiled != 1 {
		t.Fatalf("lane after two more cards = %+v", s)
	}
	clock = clock.Add(45 * time.Minute)
	if s := snap(); s.CardsThisHour != 1 {
		t.Fatalf("cards this hour 75 minutes after the first = %d, want 1", s.CardsThisHour)
	}
}

// Resume counts as a refill for the simulated printer: out of cards until
// the operator resumes.
func TestLaneResumeRefills(t *testing.T) {
	ctx := context.Background()
	l := simLane(t, "sim:cards=1")
	tr := l.Devices.Transport
	if err := tr.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Eject(ctx); err != nil {
		t.Fatal(err)
	}
	err := tr.Feed(ctx)
	if f, ok := printer.AsFault(err); !ok || f.Code != printer.FaultMediaEmpty {
		t.Fatalf("Feed from an empty hopper = %v", err)
	}
	l.Fault("transport", err.Error(), nil)
	if err := l.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if s := l.Snapshot(ctx); s.Blanks != 1 || s.State != Idle {
		t.Fatalf("after resume = %+v, want a refilled hopper", s)
	}
	if err := tr.Feed(ctx); err != nil {
		t.Fatalf("Feed after the resume: %v", err)
	}
}

// A device that still fails when the operator resumes keeps the lane paused.
func TestLaneResumeFails(t *testing.T) {
	ctx := context.Background()
	c := Config{Name: "e", Reader: "sim", Printer: "sim", Transport: "evolis:tcp:127.0.0.1:1"}
	d, err := Open(c, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l := New(c, d)
	if err := l.Resume(ctx); err == nil {
		t.Fatal("resume with an unreachable printer succeeded")
	}
	if s := l.Snapshot(ctx); s.State != Paused || s.Reason == "" {
		t.Fatalf("lane after a failed resume = %+v", s)
	}
}
