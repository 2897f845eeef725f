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
	d, err := Open("ipp:"+e.URI+"?sides=two-sided-long-edge", Dirs{})
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
	if err := PrintOnce(ctx, d, job); err != nil {
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

	// Dedupe, faults and restarts: TestConformanceIPPEve.
}
