// Package printertest is a conformance suite for printer drivers and card
// transports, as personalize/cardtest is for cards: the same tests run
// against the spool folder, the simulator and a real IPP printer
// (ippeveprinter), and against each card transport.
package printertest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"id06/printer"
)

// Printer is one printer under test, with hooks to act on it as an
// operator or the printer itself would.
type Printer struct {
	// Open returns a driver for this printer; called again it returns a new
	// driver on the same printer, as a restarted station opens it.
	Open func(t *testing.T) printer.Driver
	// Received counts the documents the printer took for a job ID (printed
	// or printing), as the printer itself tells. The suite asks after every
	// print, so a hot-folder harness may pick the files up as a watcher does.
	Received func(t *testing.T, jobID string) int
	// Empty takes the cards away, so that the printer reports out of cards;
	// Refill gives them back, with what an operator's resume does on d.
	Empty, Refill func(t *testing.T, d printer.Driver)
	// Stall makes the printer take the next card and stop halfway through
	// it (a jam); Unstall is the operator clearing it. Nil for a printer
	// whose hand-over is its completion (a hot folder).
	Stall, Unstall func(t *testing.T, d printer.Driver)
}

// Run runs the printer suite; newPrinter returns a fresh printer per test.
func Run(t *testing.T, newPrinter func(t *testing.T) *Printer) {
	for _, tc := range printerSuite {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			tc.run(t, ctx, newPrinter(t))
		})
	}
}

// testPDF is a minimal document: drivers hand it over, they do not read it.
var testPDF = []byte("%PDF-1.4\n% card face\n%%EOF\n")

func job(t *testing.T) printer.Job {
	// One job ID per test, readable at the printer (ippeveprinter puts it
	// in the file name).
	name := t.Name()[strings.LastIndex(t.Name(), "/")+1:]
	return printer.Job{ID: "conf-" + strings.ToLower(name), CardNumber: "BB-0000-000001", OrderID: "conf-order", PDF: testPDF}
}

func wantReceived(t *testing.T, p *Printer, jobID string, want int, when string) {
	t.Helper()
	if got := p.Received(t, jobID); got != want {
		t.Fatalf("%s: the printer received job %s %d times, want %d", when, jobID, got, want)
	}
}

func wantLookup(t *testing.T, ctx context.Context, d printer.Driver, jobID string, want printer.JobState, when string) {
	t.Helper()
	st, err := d.Lookup(ctx, jobID)
	if err != nil {
		t.Fatalf("%s: Lookup(%s): %v", when, jobID, err)
	}
	if st.State != want {
		t.Fatalf("%s: Lookup(%s) = %s, want %s", when, jobID, st.State, want)
	}
}

func wantFault(t *testing.T, err error, code, when string) *printer.Fault {
	t.Helper()
	f, ok := printer.AsFault(err)
	if !ok || f.Code != code {
		t.Fatalf("%s: %v, want a %s fault", when, err, code)
	}
	if f.Message == "" {
		t.Fatalf("%s: fault %s has no message for the operator", when, code)
	}
	return f
}

// waitReady polls Status until the printer is ready (a real printer takes
// a moment to notice a refill).
func waitReady(t *testing.T, ctx context.Context, d interface {
	Status(context.Context) printer.Status
}) {
	t.Helper()
	for {
		st := d.Status(ctx)
		if st.Ready {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("printer not ready again: %+v", st)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

var printerSuite = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, p *Printer)
}{
	{"SameJobTwicePrintsOnce", func(t *testing.T, ctx context.Context, p *Printer) {
		d, j := p.Open(t), job(t)
		wantLookup(t, ctx, d, j.ID, printer.JobUnknown, "before printing")
		if err := printer.PrintOnce(ctx, d, j); err != nil {
			t.Fatalf("PrintOnce: %v", err)
		}
		wantReceived(t, p, j.ID, 1, "after printing")
		wantLookup(t, ctx, d, j.ID, printer.JobDone, "after printing")
		if err := printer.PrintOnce(ctx, d, j); err != nil {
			t.Fatalf("PrintOnce again: %v", err)
		}
		wantReceived(t, p, j.ID, 1, "after printing the same job again")
	}},
	{"LookupAfterRestart", func(t *testing.T, ctx context.Context, p *Printer) {
		d, j := p.Open(t), job(t)
		if err := printer.PrintOnce(ctx, d, j); err != nil {
			t.Fatalf("PrintOnce: %v", err)
		}
		wantReceived(t, p, j.ID, 1, "after printing")
		// A restarted station has only the printer's word for it.
		d2 := p.Open(t)
		wantLookup(t, ctx, d2, j.ID, printer.JobDone, "after a restart")
		wantLookup(t, ctx, d2, j.ID+"-other", printer.JobUnknown, "a job never sent, after a restart")
		if err := printer.PrintOnce(ctx, d2, j); err != nil {
			t.Fatalf("PrintOnce after a restart: %v", err)
		}
		wantReceived(t, p, j.ID, 1, "after a restarted station printed the job again")
	}},
	{"OutOfCards", func(t *testing.T, ctx context.Context, p *Printer) {
		d, j := p.Open(t), job(t)
		p.Empty(t, d)
		st := d.Status(ctx)
		if st.Ready || st.Fault == nil || st.Fault.Code != printer.FaultMediaEmpty || st.Message == "" {
			t.Fatalf("Status with no cards = %+v, want out of cards with a message", st)
		}
		f := wantFault(t, printer.PrintOnce(ctx, d, j), printer.FaultMediaEmpty, "PrintOnce with no cards")
		if f.Retryable {
			t.Error("out of cards is retryable: an operator must refill")
		}
		wantReceived(t, p, j.ID, 0, "with no cards")
		wantLookup(t, ctx, d, j.ID, printer.JobUnknown, "with no cards")
		p.Refill(t, d)
		waitReady(t, ctx, d)
		if err := printer.PrintOnce(ctx, d, j); err != nil {
			t.Fatalf("PrintOnce after the refill: %v", err)
		}
		wantReceived(t, p, j.ID, 1, "after the refill")
	}},
	{"FaultThenRecovery", func(t *testing.T, ctx context.Context, p *Printer) {
		if p.Stall == nil {
			t.Skip("this printer's hand-over is its completion: no card stops halfway")
		}
		d, j := p.Open(t), job(t)
		p.Stall(t, d)
		err := printer.PrintOnce(ctx, d, j)
		if _, ok := printer.AsFault(err); !ok {
			t.Fatalf("PrintOnce of a card that stops halfway = %v, want a fault", err)
		}
		wantReceived(t, p, j.ID, 1, "while the card is stuck")
		if st := d.Status(ctx); st.Ready {
			t.Fatalf("Status with a card stuck = %+v, want a fault", st)
		}
		// The station crashes; the restarted one asks before printing.
		d2 := p.Open(t)
		wantLookup(t, ctx, d2, j.ID, printer.JobPending, "after a restart with the card stuck")
		p.Unstall(t, d2)
		waitReady(t, ctx, d2)
		if err := printer.PrintOnce(ctx, d2, j); err != nil {
			t.Fatalf("PrintOnce after the jam cleared: %v", err)
		}
		wantReceived(t, p, j.ID, 1, "after the jam cleared")
		wantLookup(t, ctx, d2, j.ID, printer.JobDone, "after the jam cleared")
	}},
	{"CancelledWait", func(t *testing.T, ctx context.Context, p *Printer) {
		d, j := p.Open(t), job(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := printer.PrintOnce(cctx, d, j); !errors.Is(err, context.Canceled) {
			t.Fatalf("PrintOnce with a cancelled context = %v, want context.Canceled", err)
		}
		wantReceived(t, p, j.ID, 0, "after a cancelled print")
	}},
}

// Transport is one card transport under test.
type Transport struct {
	// Open returns a transport on this device; called again, a new one on
	// the same device, as a restarted station opens it.
	Open func(t *testing.T) printer.Transport
	// Counts are the cards fed, ejected and rejected, as the device counts.
	Counts func(t *testing.T) (fed, ejected, rejected int)
	// Empty takes the blanks away; Refill puts them back with what an
	// operator's resume does on tr.
	Empty, Refill func(t *testing.T, tr printer.Transport)
	// Jam makes the card path jam; Unjam is the operator clearing it and
	// resuming.
	Jam, Unjam func(t *testing.T, tr printer.Transport)
}

// RunTransport runs the card transport suite; newTransport returns a fresh
// device per test.
func RunTransport(t *testing.T, newTransport func(t *testing.T) *Transport) {
	for _, tc := range transportSuite {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			tc.run(t, ctx, newTransport(t))
		})
	}
}

func wantCounts(t *testing.T, tr *Transport, fed, ejected, rejected int, when string) {
	t.Helper()
	if f, e, r := tr.Counts(t); f != fed || e != ejected || r != rejected {
		t.Fatalf("%s: device counts fed %d, ejected %d, rejected %d; want %d, %d, %d", when, f, e, r, fed, ejected, rejected)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

var transportSuite = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, tr *Transport)
}{
	{"FeedEjectReject", func(t *testing.T, ctx context.Context, tr *Transport) {
		d := tr.Open(t)
		if st := d.TransportStatus(ctx); st.Fault != nil || st.Message == "" {
			t.Fatalf("TransportStatus of a fresh device = %+v", st)
		}
		must(t, "Feed", d.Feed(ctx))
		must(t, "Eject", d.Eject(ctx))
		wantCounts(t, tr, 1, 1, 0, "after feed and eject")
		must(t, "Feed", d.Feed(ctx))
		must(t, "Reject", d.Reject(ctx))
		wantCounts(t, tr, 2, 1, 1, "after feed and reject")
	}},
	{"OutOfCards", func(t *testing.T, ctx context.Context, tr *Transport) {
		d := tr.Open(t)
		tr.Empty(t, d)
		fed, ejected, rejected := tr.Counts(t)
		wantFault(t, d.Feed(ctx), printer.FaultMediaEmpty, "Feed with no blanks")
		st := d.TransportStatus(ctx)
		if st.Fault == nil || st.Fault.Code != printer.FaultMediaEmpty || st.Message == "" {
			t.Fatalf("TransportStatus with no blanks = %+v, want out of cards", st)
		}
		if st.Blanks > 0 {
			t.Fatalf("TransportStatus with no blanks says %d left", st.Blanks)
		}
		wantCounts(t, tr, fed, ejected, rejected, "after a feed with no blanks")
		tr.Refill(t, d)
		if st := d.TransportStatus(ctx); st.Fault != nil {
			t.Fatalf("TransportStatus after the refill = %+v", st)
		}
		must(t, "Feed after the refill", d.Feed(ctx))
		must(t, "Eject", d.Eject(ctx))
		wantCounts(t, tr, fed+1, ejected+1, rejected, "after the refill")
	}},
	{"FaultThenRecovery", func(t *testing.T, ctx context.Context, tr *Transport) {
		d := tr.Open(t)
		tr.Jam(t, d)
		wantFault(t, d.Feed(ctx), printer.FaultMediaJam, "Feed into a jammed card path")
		if st := d.TransportStatus(ctx); st.Fault == nil || st.Fault.Code != printer.FaultMediaJam {
			t.Fatalf("TransportStatus while jammed = %+v", st)
		}
		tr.Unjam(t, d)
		if st := d.TransportStatus(ctx); st.Fault != nil {
			t.Fatalf("TransportStatus after the jam was cleared = %+v", st)
		}
		fed, ejected, rejected := tr.Counts(t)
		must(t, "Feed after the jam", d.Feed(ctx))
		must(t, "Eject", d.Eject(ctx))
		wantCounts(t, tr, fed+1, ejected+1, rejected, "after the jam")
	}},
	{"CardSurvivesRestart", func(t *testing.T, ctx context.Context, tr *Transport) {
		d := tr.Open(t)
		must(t, "Feed", d.Feed(ctx))
		// The station restarts with the card inside the printer; the new
		// station can still send it to the reject bin.
		must(t, "Close", d.Close())
		d2 := tr.Open(t)
		must(t, "Reject after a restart", d2.Reject(ctx))
		wantCounts(t, tr, 1, 0, 1, "after the restart")
	}},
}
