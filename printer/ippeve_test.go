package printer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phin1x/go-ipp"

	"id06/printer/ippetest"
)

func TestIPPEveRoundTrip(t *testing.T) {
	e := ippetest.Start(t)
	// -2: the printer does duplex, as a card printer with a flipper does.
	d, err := OpenDriver("ipp:"+e.URI+"?sides=two-sided-long-edge", "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if st := d.Status(ctx); !st.Ready {
		t.Fatalf("ippeveprinter not ready: %+v\n%s", st, e.LogText())
	}
	face, err := Render(DefaultTemplate(), goldenCard())
	if err != nil {
		t.Fatal(err)
	}
	job := Job{ID: "sup-2026-000123.1", CardNumber: "BB-1234-567890", OrderID: "sup-2026-000123", PDF: face.PDF}
	if err := d.Print(ctx, job); err != nil {
		t.Fatalf("Print: %v\n%s", err, e.LogText())
	}
	files := e.Received(t)
	if len(files) != 1 {
		t.Fatalf("printer received %v, want one PDF", files)
	}
	// ippeveprinter names the file JOBID-JOBNAME with '.' made '_'.
	if !strings.Contains(filepath.Base(files[0]), "sup-2026-000123") {
		t.Errorf("spooled file %s does not carry the job name %s", files[0], job.ID)
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, face.PDF) {
		t.Errorf("the printer received %d bytes that differ from the %d-byte card PDF", len(got), len(face.PDF))
	}

	// The printer took the job as duplex: one card, front and back.
	ippd := d.(*IPPDriver)
	req := ippd.request(ipp.OperationGetJobAttributes)
	req.OperationAttributes[ipp.AttributeJobID] = ippd.jobs[job.ID]
	req.OperationAttributes[ipp.AttributeRequestedAttributes] = []string{"sides"}
	resp, err := ippd.send(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strAttr(resp.JobAttributes[0], "sides"); got != "two-sided-long-edge" {
		t.Errorf("printer job sides = %q, want two-sided-long-edge", got)
	}

	// The same job again (a retry after a station crash): no second card.
	if err := d.Print(ctx, job); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDriver("ipp:"+e.URI, "") // a restarted station, empty memory
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Print(ctx, job); err != nil {
		t.Fatal(err)
	}
	if n := len(e.Received(t)); n != 1 {
		t.Errorf("printing the same job ID again made %d documents, want 1", n)
	}
}

// TestIPPEveOutOfCards empties the tray: the station sees "out of cards",
// submits nothing, and prints once the hopper is refilled.
func TestIPPEveOutOfCards(t *testing.T) {
	e := ippetest.Start(t)
	d, err := NewIPPDriver(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.SetCards(t, 0)
	st := d.Status(ctx)
	if st.Ready || st.Fault == nil || st.Fault.Code != FaultMediaEmpty || st.Message != "Out of cards: refill the card hopper" {
		t.Fatalf("Status with an empty tray = %+v, want out of cards", st)
	}
	job := Job{ID: "ord-7.1", PDF: testPDF}
	err = d.Print(ctx, job)
	if f, ok := AsFault(err); !ok || f.Code != FaultMediaEmpty || f.Retryable {
		t.Fatalf("Print with an empty tray = %v, want an out-of-cards fault for the operator", err)
	}
	if n := len(e.Received(t)); n != 0 {
		t.Fatalf("%d documents sent to a printer without cards", n)
	}
	e.SetCards(t, 100)
	if st := d.Status(ctx); !st.Ready {
		t.Fatalf("Status after refill = %+v", st)
	}
	if err := d.Print(ctx, job); err != nil {
		t.Fatalf("Print after refill: %v", err)
	}
	if n := len(e.Received(t)); n != 1 {
		t.Errorf("%d documents after refill, want 1", n)
	}
}

// TestIPPEveJamWhilePrinting: the printer reports media-jam while the card
// is in it. Print returns the jam; the job stays at the printer; after the
// jam is cleared the same job completes without a second submission.
func TestIPPEveJamWhilePrinting(t *testing.T) {
	e := ippetest.Start(t)
	d, err := NewIPPDriver(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := os.WriteFile(e.JamFlag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	job := Job{ID: "ord-8.1", PDF: testPDF}
	err = d.Print(ctx, job)
	if f, ok := AsFault(err); !ok || f.Code != FaultMediaJam || f.Message != "Card jam: open the printer and remove the stuck card" {
		t.Fatalf("Print during a jam = %v, want a media-jam fault", err)
	}
	if err := os.Remove(e.JamFlag); err != nil {
		t.Fatal(err)
	}
	// The station stays paused until the printer reports ready again.
	waitFor(t, func() bool { return d.Status(ctx).Ready })
	if err := d.Print(ctx, job); err != nil {
		t.Fatalf("Print after the jam was cleared: %v\n%s", err, e.LogText())
	}
	if n := len(e.Received(t)); n != 1 {
		t.Errorf("%d documents at the printer, want 1: the retry must follow the jammed job", n)
	}
	if st := d.Status(ctx); !st.Ready {
		t.Errorf("Status after the jam = %+v, want ready", st)
	}
}
