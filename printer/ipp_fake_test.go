package printer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phin1x/go-ipp"
)

// fakeIPP is a loopback IPP responder built with go-ipp's own codec, for the
// conditions ippeveprinter cannot produce on demand: server-error-busy, an
// empty ribbon, an aborted job. It speaks the same wire format as a printer.
type fakeIPP struct {
	mu       sync.Mutex
	reason   string // printer-state-reasons (one value)
	busy     int    // Print-Job answers server-error-busy this many times
	hold     bool   // new jobs stay processing until release
	abortAll bool   // new jobs end aborted
	ignored  bool   // Print-Job answers successful-ok-ignored-or-substituted-attributes
	jobs     []*fakeJob
	ops      []int16
}

type fakeJob struct {
	id    int
	name  string
	state int8
	doc   []byte
	sides any // the job's "sides" attribute, if sent
}

func newFakeIPP(t *testing.T) (*fakeIPP, *IPPDriver) {
	f := &fakeIPP{reason: "none"}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	d, err := NewIPPDriver(srv.URL + "/ipp/print")
	if err != nil {
		t.Fatal(err)
	}
	d.Poll, d.BusyBackoff = 5*time.Millisecond, time.Millisecond
	return f, d
}

func (f *fakeIPP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// go-ipp's decoder fails on a final Read that returns data with io.EOF,
	// as net/http bodies do; decode from memory.
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var doc bytes.Buffer
	req, err := ipp.NewRequestDecoder(bytes.NewReader(raw)).Decode(&doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, req.Operation)
	resp := ipp.NewResponse(ipp.StatusOk, req.RequestId)
	jobAttrs := func(j *fakeJob) ipp.Attributes {
		return ipp.Attributes{
			"job-id":    {{Value: j.id}},
			"job-name":  {{Value: j.name}},
			"job-state": {{Value: int(j.state)}},
		}
	}
	switch req.Operation {
	case ipp.OperationPrintJob:
		if f.busy > 0 {
			f.busy--
			resp.StatusCode = ipp.StatusErrorBusy
			break
		}
		name, _ := req.OperationAttributes["job-name"].(string)
		j := &fakeJob{id: len(f.jobs) + 1, name: name, state: ipp.JobStateCompleted, doc: doc.Bytes(), sides: req.JobAttributes["sides"]}
		if f.hold {
			j.state = ipp.JobStateProcessing
		}
		if f.abortAll {
			j.state = ipp.JobStateAborted
		}
		f.jobs = append(f.jobs, j)
		resp.JobAttributes = append(resp.JobAttributes, jobAttrs(j))
		if f.ignored {
			resp.StatusCode = ipp.StatusOkIgnoredOrSubstituted
		}
	case ipp.OperationGetJobAttributes:
		id, _ := req.OperationAttributes["job-id"].(int)
		if id < 1 || id > len(f.jobs) {
			resp.StatusCode = ipp.StatusErrorNotFound
			break
		}
		resp.JobAttributes = append(resp.JobAttributes, jobAttrs(f.jobs[id-1]))
	case ipp.OperationGetJobs:
		which, _ := req.OperationAttributes["which-jobs"].(string)
		for _, j := range f.jobs {
			done := j.state >= ipp.JobStateCanceled
			if (which == "completed") == done {
				resp.JobAttributes = append(resp.JobAttributes, jobAttrs(j))
			}
		}
	case ipp.OperationGetPrinterAttributes:
		state := 3 // idle
		if f.reason != "none" && strings.HasSuffix(f.reason, "-error") {
			state = 5 // stopped
		}
		resp.PrinterAttributes = append(resp.PrinterAttributes, ipp.Attributes{
			"printer-state":             {{Value: state}},
			"printer-state-reasons":     {{Value: f.reason}},
			"printer-is-accepting-jobs": {{Value: true}},
		})
	default:
		resp.StatusCode = ipp.StatusErrorOperationNotSupported
	}
	body, err := resp.Encode()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ipp.ContentTypeIPP)
	_, _ = w.Write(body)
}

func (f *fakeIPP) set(fn func(*fakeIPP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeIPP) count(op int16) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range f.ops {
		if o == op {
			n++
		}
	}
	return n
}

func TestIPPFaultMapping(t *testing.T) {
	tests := []struct {
		reason   string
		wantCode string // "" = ready
	}{
		{"none", ""},
		{"media-low-warning", ""},
		{"marker-supply-low-report", ""},
		{"media-empty-error", FaultMediaEmpty},
		{"media-empty-warning", FaultMediaEmpty},
		{"media-needed-warning", FaultMediaEmpty},
		{"media-jam-error", FaultMediaJam},
		{"marker-supply-empty-error", FaultRibbonEmpty},
		{"offline-report", FaultOffline},
		{"cover-open-error", FaultCoverOpen},
		{"paused", FaultPaused},
		{"fuser-over-temp-error", "fuser-over-temp"},
		{"fuser-over-temp-warning", ""},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			f, d := newFakeIPP(t)
			f.set(func(f *fakeIPP) { f.reason = tc.reason })
			st := d.Status(context.Background())
			err := PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF})
			if tc.wantCode == "" {
				if !st.Ready || err != nil {
					t.Fatalf("Status %+v, Print %v: want ready and printed", st, err)
				}
				return
			}
			if st.Ready || st.Fault == nil || st.Fault.Code != tc.wantCode || st.Message == "" {
				t.Errorf("Status = %+v, want fault %s", st, tc.wantCode)
			}
			if fault, ok := AsFault(err); !ok || fault.Code != tc.wantCode {
				t.Errorf("Print = %v, want fault %s", err, tc.wantCode)
			}
			if n := f.count(ipp.OperationPrintJob); n != 0 {
				t.Errorf("Print-Job sent %d times while the printer reports %s", n, tc.reason)
			}
		})
	}
	if got := NewFault(FaultRibbonEmpty).Message; got != "Ribbon empty: replace the ribbon" {
		t.Errorf("ribbon message = %q", got)
	}
}

func TestIPPBusyIsRetried(t *testing.T) {
	f, d := newFakeIPP(t)
	f.set(func(f *fakeIPP) { f.busy = 3 })
	if err := PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatalf("Print after 3 busy answers: %v", err)
	}
	if n := f.count(ipp.OperationPrintJob); n != 4 {
		t.Errorf("Print-Job sent %d times, want 4 (3 busy + 1)", n)
	}
	if !bytes.Equal(f.jobs[0].doc, testPDF) {
		t.Error("the printer received a different document")
	}
	if f.jobs[0].sides != nil {
		t.Errorf("sides %v sent without being configured", f.jobs[0].sides)
	}

	f.set(func(f *fakeIPP) { f.busy = 100 })
	d.BusyRetries = 2
	err := PrintOnce(context.Background(), d, Job{ID: "j2", PDF: testPDF})
	if fault, ok := AsFault(err); !ok || fault.Code != FaultBusy || !fault.Retryable {
		t.Fatalf("Print against a printer that stays busy = %v, want a retryable busy fault", err)
	}
}

// TestIPPFaultWhileQueued: the printer runs out of ribbon while the job
// waits; Print returns the fault, the job stays at the printer, and the next
// Print of the same job follows it instead of printing a second card.
func TestIPPFaultWhileQueued(t *testing.T) {
	f, d := newFakeIPP(t)
	f.set(func(f *fakeIPP) { f.hold = true })
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- PrintOnce(ctx, d, Job{ID: "j1", PDF: testPDF}) }()
	waitFor(t, func() bool { return f.count(ipp.OperationGetJobAttributes) > 0 })
	f.set(func(f *fakeIPP) { f.reason = "marker-supply-empty-error" })
	err := <-done
	if fault, ok := AsFault(err); !ok || fault.Code != FaultRibbonEmpty || fault.Retryable {
		t.Fatalf("Print = %v, want a ribbon fault an operator must clear", err)
	}

	// Ribbon replaced; the printer finishes the held job.
	f.set(func(f *fakeIPP) { f.reason = "none"; f.jobs[0].state = ipp.JobStateCompleted })
	if err := PrintOnce(ctx, d, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatalf("Print after the fault cleared: %v", err)
	}
	if n := f.count(ipp.OperationPrintJob); n != 1 {
		t.Errorf("Print-Job sent %d times, want 1: the retry must follow the queued job", n)
	}

	// A station restart forgets its memory; Get-Jobs finds the job by name.
	d2, err := NewIPPDriver(d.postURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := PrintOnce(ctx, d2, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(ipp.OperationPrintJob); n != 1 {
		t.Errorf("after a restart Print-Job was sent again (%d total)", n)
	}
}

func TestIPPAbortedJobIsResubmitted(t *testing.T) {
	f, d := newFakeIPP(t)
	f.set(func(f *fakeIPP) { f.abortAll = true })
	ctx := context.Background()
	err := PrintOnce(ctx, d, Job{ID: "j1", PDF: testPDF})
	if fault, ok := AsFault(err); !ok || fault.Code != FaultJobAborted || !fault.Retryable {
		t.Fatalf("Print of an aborted job = %v, want a retryable job-aborted fault", err)
	}
	f.set(func(f *fakeIPP) { f.abortAll = false })
	if err := PrintOnce(ctx, d, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(ipp.OperationPrintJob); n != 2 {
		t.Errorf("Print-Job sent %d times, want 2: an aborted card is printed again", n)
	}
}

func TestIPPOffline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	d, err := NewIPPDriver("http://" + addr + "/ipp/print")
	if err != nil {
		t.Fatal(err)
	}
	err = PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF})
	if fault, ok := AsFault(err); !ok || fault.Code != FaultOffline || !fault.Retryable {
		t.Fatalf("Print to a dead address = %v, want a retryable offline fault", err)
	}
	if st := d.Status(context.Background()); st.Ready || st.Fault.Code != FaultOffline {
		t.Errorf("Status = %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := PrintOnce(ctx, d, Job{ID: "j1", PDF: testPDF}); !errors.Is(err, context.Canceled) {
		t.Errorf("Print with a cancelled context = %v", err)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestIPPHeldJob(t *testing.T) {
	f, d := newFakeIPP(t)
	f.set(func(f *fakeIPP) { f.hold = true })
	done := make(chan error, 1)
	go func() { done <- PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF}) }()
	waitFor(t, func() bool { return f.count(ipp.OperationGetJobAttributes) > 0 })
	f.set(func(f *fakeIPP) { f.jobs[0].state = ipp.JobStateHeld })
	if fault, ok := AsFault(<-done); !ok || fault.Code != FaultJobHeld {
		t.Fatalf("Print of a held job = %v, want a job-held fault", fault)
	}
	// The printer itself is idle, but the station stays paused until the
	// job is released.
	if st := d.Status(context.Background()); st.Ready || st.Fault.Code != FaultJobHeld {
		t.Fatalf("Status with our job held = %+v", st)
	}
	f.set(func(f *fakeIPP) { f.jobs[0].state = ipp.JobStateCompleted })
	if st := d.Status(context.Background()); !st.Ready {
		t.Fatalf("Status after release = %+v", st)
	}
	if err := PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(ipp.OperationPrintJob); n != 1 {
		t.Errorf("Print-Job sent %d times, want 1", n)
	}
}

// TestIPPJobLostAtPrinter: the printer restarts and forgets the job that
// waited for a jam to clear; the station sends the card again, once.
func TestIPPJobLostAtPrinter(t *testing.T) {
	f, d := newFakeIPP(t)
	f.set(func(f *fakeIPP) { f.hold = true })
	done := make(chan error, 1)
	go func() { done <- PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF}) }()
	waitFor(t, func() bool { return f.count(ipp.OperationGetJobAttributes) > 0 })
	f.set(func(f *fakeIPP) { f.reason = "media-jam-error" })
	if _, ok := AsFault(<-done); !ok {
		t.Fatal("no fault during the jam")
	}
	f.set(func(f *fakeIPP) { f.reason = "none"; f.jobs = nil; f.hold = false }) // printer restarted
	if err := PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatalf("Print after the printer lost the job: %v", err)
	}
	if n := f.count(ipp.OperationPrintJob); n != 2 {
		t.Errorf("Print-Job sent %d times, want 2 (the lost job once more)", n)
	}
	if len(f.jobs) != 1 || f.jobs[0].state != ipp.JobStateCompleted {
		t.Errorf("printer jobs after the restart: %d", len(f.jobs))
	}
}

// TestIPPOkIgnored: a printer that ignores an attribute still printed; the
// station must not count the card as failed (go-ipp's adapter would).
func TestIPPOkIgnored(t *testing.T) {
	f, d := newFakeIPP(t)
	f.set(func(f *fakeIPP) { f.ignored = true })
	if err := PrintOnce(context.Background(), d, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatalf("Print answered successful-ok-ignored-or-substituted-attributes: %v", err)
	}
	if n := f.count(ipp.OperationPrintJob); n != 1 {
		t.Errorf("Print-Job sent %d times", n)
	}
}

func TestIPPSides(t *testing.T) {
	f, d := newFakeIPP(t)
	d2, err := NewIPPDriver(d.postURL + "?sides=two-sided-long-edge")
	if err != nil {
		t.Fatal(err)
	}
	if err := PrintOnce(context.Background(), d2, Job{ID: "j1", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	if got := f.jobs[0].sides; got != "two-sided-long-edge" {
		t.Errorf("sides = %v, want two-sided-long-edge", got)
	}
}
