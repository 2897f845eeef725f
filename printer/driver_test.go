package printer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"id06/order"
)

var testPDF = []byte("%PDF-1.4\n% card face\n%%EOF\n")

func TestOpen(t *testing.T) {
	spoolDefault := t.TempDir()
	tests := []struct {
		spec    string
		want    string // type name, or error substring
		wantErr bool
	}{
		{"spool", "*printer.SpoolDriver", false},
		{"spool:" + filepath.Join(t.TempDir(), "hot"), "*printer.SpoolDriver", false},
		{"sim", "*printer.SimDriver", false},
		{"ipp:http://localhost:8631/ipp/print", "*printer.IPPDriver", false},
		{"ipp:ipp://printer.local/printers/cards", "*printer.IPPDriver", false},
		{"ipp://localhost:631/printers/Evolis", "*printer.IPPDriver", false},
		{"http://printer:631/ipp/print", "*printer.IPPDriver", false},
		{"ipp:", "no printer URI", true},
		{"ipp:ftp://x/y", "scheme must be", true},
		{"ipp:http:///ipp/print", "has no host", true},
		{"ipp:ipp://printer:99999/ipp/print", "bad port", true},
		{"ipp:ipp://printer/ipp/print?sides=both", "the only option is sides", true},
		{"ipp:ipp://printer/ipp/print?copies=2", "the only option is sides", true},
		{"sim:cards=5:jam-after=3:print-time=2s", "*printer.SimDriver", false},
		{"sim:x", "want NAME=VALUE", true},
		{"sim:cards=0", "cards=0: want a whole number from 1", true},
		{"sim:cards=5:cards=6", "given twice", true},
		{"sim:print-time=forever", "print-time=forever", true},
		{"sim:speed=2", `unknown simulator option "speed"`, true},
		{"spool:/proc/no-spool-here", "spool", true},
		{"laser", `unknown kind "laser"`, true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			d, err := Open(tc.spec, Dirs{Spool: spoolDefault})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Open(%q) error = %v, want %q", tc.spec, err, tc.want)
				}
				if d != nil {
					t.Fatalf("Open(%q) failed but returned a non-nil %T, which its caller would Close", tc.spec, d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := typeName(d); got != tc.want {
				t.Errorf("Open(%q) = %s, want %s", tc.spec, got, tc.want)
			}
		})
	}
	if _, err := Open("spool", Dirs{}); err == nil {
		t.Error("spool without any directory opened")
	}
}

func typeName(d Driver) string {
	switch d.(type) {
	case *SpoolDriver:
		return "*printer.SpoolDriver"
	case *SimDriver:
		return "*printer.SimDriver"
	case *IPPDriver:
		return "*printer.IPPDriver"
	}
	return "?"
}

func TestIPPDriverURIs(t *testing.T) {
	tests := []struct{ in, printerURI, postURL string }{
		{"http://localhost:8631/ipp/print", "ipp://localhost:8631/ipp/print", "http://localhost:8631/ipp/print"},
		{"ipp://printer.local/printers/cards", "ipp://printer.local:631/printers/cards", "http://printer.local:631/printers/cards"},
		{"ipps://10.0.0.7", "ipps://10.0.0.7:631/ipp/print", "https://10.0.0.7:631/ipp/print"},
		{"ipp://[::1]:8000/ipp/print", "ipp://[::1]:8000/ipp/print", "http://[::1]:8000/ipp/print"},
		{"ipp://cards.local/ipp/print?sides=two-sided-long-edge", "ipp://cards.local:631/ipp/print", "http://cards.local:631/ipp/print"},
	}
	for _, tc := range tests {
		d, err := NewIPPDriver(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if d.printerURI != tc.printerURI || d.postURL != tc.postURL {
			t.Errorf("%s: printer-uri %s post %s, want %s %s", tc.in, d.printerURI, d.postURL, tc.printerURI, tc.postURL)
		}
	}
}

func TestSimDriver(t *testing.T) {
	ctx := context.Background()
	s := NewSimDriver()
	if st := s.Status(ctx); !st.Ready {
		t.Fatalf("new simulator not ready: %+v", st)
	}
	for _, code := range []string{FaultOffline, FaultMediaEmpty, FaultMediaJam, FaultRibbonEmpty, FaultBusy} {
		t.Run(code, func(t *testing.T) {
			s.SetFault(code)
			err := PrintOnce(ctx, s, Job{ID: "job-" + code, PDF: testPDF})
			f, ok := AsFault(err)
			if !ok || f.Code != code {
				t.Fatalf("Print with %s fault = %v, want that fault", code, err)
			}
			if st := s.Status(ctx); st.Ready || st.Fault == nil || st.Fault.Code != code || st.Message == "" {
				t.Errorf("Status = %+v, want fault %s with a message", st, code)
			}
			s.ClearFault()
			if err := PrintOnce(ctx, s, Job{ID: "job-" + code, PDF: testPDF}); err != nil {
				t.Fatalf("after ClearFault: %v", err)
			}
		})
	}
	if got := NewFault(FaultMediaEmpty).Message; got != "Out of cards: refill the card hopper" {
		t.Errorf("media-empty message = %q", got)
	}
	// The same job twice prints once.
	if err := PrintOnce(ctx, s, Job{ID: "job-offline", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Jobs()); n != 5 {
		t.Errorf("%d jobs printed, want 5 (one per ID)", n)
	}
	if err := PrintOnce(ctx, s, Job{ID: "../etc/passwd", PDF: testPDF}); err == nil {
		t.Error("a job ID with a path was accepted")
	}
	if err := PrintOnce(ctx, s, Job{ID: "ok", PDF: []byte("GIF89a")}); err == nil {
		t.Error("a non-PDF document was accepted")
	}
}

func TestSpoolDriver(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "hot")
	s, err := NewSpoolDriver(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }
	job := Job{ID: "ord-1-a1", CardNumber: "BB-1234-567890", OrderID: "sup-2026-000123", PDF: testPDF}
	if err := PrintOnce(ctx, s, job); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, dir); strings.Join(got, " ") != "ord-1-a1.json ord-1-a1.pdf" {
		t.Fatalf("spool folder holds %v, want the PDF and its sidecar only (no temp files)", got)
	}
	pdf, err := os.ReadFile(filepath.Join(dir, "ord-1-a1.pdf"))
	if err != nil || !bytes.Equal(pdf, testPDF) {
		t.Fatalf("spooled PDF differs: %v", err)
	}
	var side Sidecar
	data, err := os.ReadFile(filepath.Join(dir, "ord-1-a1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &side); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(testPDF)
	want := Sidecar{JobID: job.ID, OrderID: job.OrderID, CardNumber: job.CardNumber, Document: "ord-1-a1.pdf",
		Bytes: len(testPDF), SHA256: hex.EncodeToString(sum[:]), SpooledAt: s.now()}
	if side != want {
		t.Errorf("sidecar = %+v, want %+v", side, want)
	}

	// The watcher takes the files away; the same job must not come back.
	for _, f := range []string{"ord-1-a1.pdf", "ord-1-a1.json"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := PrintOnce(ctx, s, job); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, dir); len(got) != 0 {
		t.Errorf("reprinting the same job ID spooled again: %v", got)
	}

	// A PDF already in place without a record (an older station version
	// recorded after the rename) counts as handed over and is not rewritten.
	if err := os.WriteFile(filepath.Join(dir, "ord-9-a1.pdf"), []byte("%PDF-earlier"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := PrintOnce(ctx, s, Job{ID: "ord-9-a1", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "ord-9-a1.pdf")); string(got) != "%PDF-earlier" {
		t.Error("an already spooled PDF was written a second time")
	}

	// A crash between recording the hand-over and renaming the PDF into
	// place: Lookup finishes the hand-over, once.
	if err := os.WriteFile(filepath.Join(dir, ".sent", "ord-8-a1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".ord-8-a1.pdf.tmp"), testPDF, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Lookup(ctx, "ord-8-a1"); err != nil || st.State != JobDone {
		t.Fatalf("Lookup of a half-finished hand-over = %v, %v; want done", st, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "ord-8-a1.pdf")); !bytes.Equal(got, testPDF) {
		t.Error("the interrupted hand-over was not finished")
	}
	if got := visible(t, dir); strings.Join(got, " ") != "ord-8-a1.pdf ord-9-a1.pdf" {
		t.Errorf("spool folder holds %v after the interrupted hand-over", got)
	}
	for _, f := range []string{"ord-8-a1.pdf", "ord-9-a1.pdf"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}

	// The watcher reports out of cards: the station pauses, nothing spooled.
	status := filepath.Join(dir, StatusFile)
	if err := os.WriteFile(status, []byte(`{"ready": false, "code": "media-empty"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = PrintOnce(ctx, s, Job{ID: "ord-2-a1", PDF: testPDF})
	if f, ok := AsFault(err); !ok || f.Code != FaultMediaEmpty || f.Message != "Out of cards: refill the card hopper" {
		t.Fatalf("Print with media-empty status = %v", err)
	}
	if st := s.Status(ctx); st.Ready || st.Fault.Code != FaultMediaEmpty {
		t.Errorf("Status = %+v", st)
	}
	if err := os.WriteFile(status, []byte(`{"ready": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := PrintOnce(ctx, s, Job{ID: "ord-2-a1", PDF: testPDF}); err != nil {
		t.Fatalf("after the fault cleared: %v", err)
	}
	if err := os.WriteFile(status, []byte(`{not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(ctx); st.Ready || !strings.Contains(st.Message, StatusFile) {
		t.Errorf("unreadable status file: Status = %+v", st)
	}
	if err := os.Remove(status); err != nil {
		t.Fatal(err)
	}

	// The folder disappears (unmounted share): a retryable offline fault.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = PrintOnce(ctx, s, Job{ID: "ord-3-a1", PDF: testPDF})
	if f, ok := AsFault(err); !ok || f.Code != FaultOffline || !f.Retryable {
		t.Fatalf("Print into a missing folder = %v, want a retryable offline fault", err)
	}
}

// visible lists the files a watcher would see (no dot-files).
func visible(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && e.Name() != StatusFile {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Every order id the intake accepts names a valid print job, and an order id
// it refuses is refused here too, as a job no retry can print.
func TestJobIDFollowsTheOrderIDRule(t *testing.T) {
	ctx := context.Background()
	s := NewSimDriver()
	for _, id := range []string{"7", "Sup-2026_000123.b", strings.Repeat("z", order.MaxIDLen), "a..b", "e2e-001"} {
		if err := order.CheckID(id); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if err := PrintOnce(ctx, s, Job{ID: JobID(id, "BB-0000-000018"), OrderID: id, CardNumber: "BB-0000-000018", PDF: testPDF}); err != nil {
			t.Errorf("order id %q accepted at intake but its print job is refused: %v", id, err)
		}
	}
	for _, id := range []string{".", "..", "-", "_x", "-_BB", "a/b", ""} {
		if order.CheckID(id) == nil {
			t.Fatalf("%q passes the order id rule", id)
		}
		err := PrintOnce(ctx, s, Job{ID: JobID(id, "BB-0000-000018"), OrderID: id, CardNumber: "BB-0000-000018", PDF: testPDF})
		if !errors.Is(err, ErrRefused) {
			t.Errorf("order id %q: %v, want ErrRefused", id, err)
		}
	}
	if err := PrintOnce(ctx, s, Job{ID: "ok", PDF: []byte("GIF89a")}); !errors.Is(err, ErrRefused) {
		t.Errorf("a non-PDF document: %v, want ErrRefused", err)
	}
}
