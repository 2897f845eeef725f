package printer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phin1x/go-ipp"
)

// IPPDriver prints through IPP Everywhere: a CUPS queue
// (ipp://host:631/printers/QUEUE) or the printer's own endpoint
// (ipp://printer:631/ipp/print).
//
// The IPP job-name is the station's job ID, so that Lookup finds a job in
// the printer's job history after a fault or a station restart.
type IPPDriver struct {
	printerURI string // the printer-uri attribute (ipp:// or ipps://)
	sides      string // IPP "sides" for the two-page face; "" leaves the queue's default
	postURL    string // where requests are POSTed (http:// or https://)
	client     *http.Client

	// Poll is the longest Get-Job-Attributes interval; BusyRetries and BusyBackoff
	// bound the retries of server-error-busy.
	Poll        time.Duration
	BusyRetries int
	BusyBackoff time.Duration

	mu    sync.Mutex     // guards jobs
	jobs  map[string]int // station job ID → printer job-id, a cache of Get-Jobs
	reqID atomic.Int32
	// held is the printer job-id of a card the printer holds (0: none), so
	// that Status keeps the station paused until someone releases it.
	held atomic.Int64
}

const ippUser = "id06-station"

// NewIPPDriver parses a printer URI: http://host:port/path, https://…,
// ipp://host[:631]/path or ipps://host[:631]/path. The path defaults to
// /ipp/print. A query ?sides=two-sided-long-edge (or -short-edge,
// one-sided) asks the printer to put the back page on the card's back; without
// it the queue's or printer's default applies.
func NewIPPDriver(uri string) (*IPPDriver, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("ipp printer: bad URI %q: %w", uri, err)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("ipp printer: URI %q has no host (want e.g. ipp://printer.local/ipp/print)", uri)
	}
	var useTLS bool
	var ippScheme string
	switch u.Scheme {
	case "http", "ipp":
		ippScheme = "ipp"
	case "https", "ipps":
		useTLS, ippScheme = true, "ipps"
	default:
		return nil, fmt.Errorf("ipp printer: URI %q: scheme must be ipp, ipps, http or https", uri)
	}
	port := 631
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("ipp printer: URI %q: bad port", uri)
		}
	}
	path := u.EscapedPath()
	if path == "" || path == "/" {
		path = "/ipp/print"
	}
	var sides string
	for k, v := range u.Query() {
		if k != "sides" || len(v) != 1 || !slices.Contains([]string{"one-sided", "two-sided-long-edge", "two-sided-short-edge"}, v[0]) {
			return nil, fmt.Errorf("ipp printer: URI %q: the only option is sides=one-sided|two-sided-long-edge|two-sided-short-edge", uri)
		}
		sides = v[0]
	}
	hostPort := net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	httpScheme := "http"
	if useTLS {
		httpScheme = "https"
	}
	return &IPPDriver{
		printerURI: ippScheme + "://" + hostPort + path,
		postURL:    httpScheme + "://" + hostPort + path,
		// Printers ship self-signed certificates, so ipps is not verified
		// (as in go-ipp's adapter); keep the printer on the station's network.
		client: &http.Client{Transport: &http.Transport{
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: true},
			ResponseHeaderTimeout: 60 * time.Second,
		}},
		sides:       sides,
		Poll:        time.Second,
		BusyRetries: 8,
		BusyBackoff: 200 * time.Millisecond,
		jobs:        map[string]int{},
	}, nil
}

// Lookup finds the newest printer job named jobID (the station's job ID is
// the IPP job-name) in the printer's job history.
func (d *IPPDriver) Lookup(ctx context.Context, jobID string) (JobStatus, error) {
	id, state, err := d.findJob(ctx, jobID)
	if err != nil || id == 0 {
		return JobStatus{}, err
	}
	return d.jobStatus(ctx, id, int8(state), nil), nil
}

// jobStatus maps an IPP job-state to what the station needs to know.
func (d *IPPDriver) jobStatus(ctx context.Context, id int, state int8, reasons []string) JobStatus {
	switch state {
	case ipp.JobStateCompleted:
		return JobStatus{State: JobDone}
	case ipp.JobStateAborted, ipp.JobStateCanceled:
		// Say why, if the printer knows.
		f := faultFromReasons(d.printerReasons(ctx), true)
		if f == nil {
			f = NewFault(FaultJobAborted)
			if len(reasons) > 0 {
				f.Message += " (" + strings.Join(reasons, ", ") + ")"
			}
		}
		return JobStatus{State: JobFailed, Fault: f}
	case ipp.JobStateHeld:
		// Status keeps the station paused until someone releases it.
		d.held.Store(int64(id))
		return JobStatus{State: JobPending, Fault: NewFault(FaultJobHeld)}
	}
	d.held.CompareAndSwap(int64(id), 0)
	return JobStatus{State: JobPending}
}

// Submit sends the PDF with Print-Job.
func (d *IPPDriver) Submit(ctx context.Context, job Job) error {
	if err := checkJob(job); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id, err := d.submit(ctx, job)
	if err != nil {
		return err
	}
	d.jobs[job.ID] = id
	return nil
}

// findJob returns the newest printer job named jobID, from memory or from
// Get-Jobs (completed and not-completed). id is 0 when there is none. It
// holds d.mu, which guards d.jobs.
func (d *IPPDriver) findJob(ctx context.Context, jobID string) (id, state int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.jobs[jobID]; ok {
		attrs, err := d.jobAttributes(ctx, id)
		var ippErr ipp.IPPError
		switch {
		case errors.As(err, &ippErr) && ippErr.Status == ipp.StatusErrorNotFound:
			// The printer lost a job that had not completed (it restarted
			// while the card waited): look it up by name, else send it again.
			delete(d.jobs, jobID)
		case err != nil:
			return 0, 0, err
		default:
			return id, intAttr(attrs, "job-state"), nil
		}
	}
	for _, which := range []string{"not-completed", "completed"} {
		req := d.request(ipp.OperationGetJobs)
		req.OperationAttributes[ipp.AttributeWhichJobs] = which
		// Only the station's own jobs; CUPS shows job names to their owner only.
		req.OperationAttributes[ipp.AttributeMyJobs] = true
		req.OperationAttributes[ipp.AttributeRequestedAttributes] = []string{"job-id", "job-name", "job-state"}
		resp, err := d.send(ctx, req, nil)
		if err != nil {
			return 0, 0, err
		}
		for _, j := range resp.JobAttributes {
			if strAttr(j, "job-name") == jobID && intAttr(j, "job-id") > id {
				id, state = intAttr(j, "job-id"), intAttr(j, "job-state")
			}
		}
	}
	if id != 0 {
		d.jobs[jobID] = id
	}
	return id, state, nil
}

func (d *IPPDriver) submit(ctx context.Context, job Job) (int, error) {
	req := d.request(ipp.OperationPrintJob)
	req.OperationAttributes[ipp.AttributeJobName] = job.ID
	req.OperationAttributes[ipp.AttributeDocumentFormat] = "application/pdf"
	if d.sides != "" {
		req.JobAttributes[ipp.AttributeSides] = d.sides
	}
	resp, err := d.send(ctx, req, job.PDF)
	if err != nil {
		return 0, err
	}
	if len(resp.JobAttributes) == 0 || intAttr(resp.JobAttributes[0], "job-id") == 0 {
		return 0, errors.New("ipp printer: Print-Job answer carries no job-id")
	}
	return intAttr(resp.JobAttributes[0], "job-id"), nil
}

// Wait polls the job with Get-Job-Attributes until it leaves pending or
// the printer reports a fault, which leaves the job at the printer.
func (d *IPPDriver) Wait(ctx context.Context, jobID string) (JobStatus, error) {
	id, _, err := d.findJob(ctx, jobID)
	if err != nil || id == 0 {
		return JobStatus{}, err
	}
	// Poll fast first (a card may be done in milliseconds), then back off to
	// d.Poll for a printer that takes half a minute per card.
	wait := min(5*time.Millisecond, d.Poll)
	for {
		attrs, err := d.jobAttributes(ctx, id)
		if ippErr := (ipp.IPPError{}); errors.As(err, &ippErr) && ippErr.Status == ipp.StatusErrorNotFound {
			// The printer restarted and lost the job while it waited.
			d.mu.Lock()
			delete(d.jobs, jobID)
			d.mu.Unlock()
			return JobStatus{State: JobUnknown}, nil
		}
		if err != nil {
			return JobStatus{}, err
		}
		js := d.jobStatus(ctx, id, int8(intAttr(attrs, "job-state")), strAttrs(attrs, "job-state-reasons"))
		if js.State != JobPending || js.Fault != nil {
			return js, nil
		}
		if st := d.status(ctx); st.Fault != nil {
			return JobStatus{State: JobPending, Fault: st.Fault}, nil
		}
		select {
		case <-ctx.Done():
			return JobStatus{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, d.Poll)
	}
}

func (d *IPPDriver) jobAttributes(ctx context.Context, id int) (ipp.Attributes, error) {
	req := d.request(ipp.OperationGetJobAttributes)
	req.OperationAttributes[ipp.AttributeJobID] = id
	req.OperationAttributes[ipp.AttributeRequestedAttributes] = []string{"job-id", "job-state", "job-state-reasons"}
	resp, err := d.send(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	if len(resp.JobAttributes) == 0 {
		return nil, fmt.Errorf("ipp printer: no attributes for job %d", id)
	}
	return resp.JobAttributes[0], nil
}

// Status asks the printer for printer-state and printer-state-reasons. It
// does not wait for a Print in progress, so the operator page stays live.
func (d *IPPDriver) Status(ctx context.Context) Status {
	if id := d.held.Load(); id != 0 {
		attrs, err := d.jobAttributes(ctx, int(id))
		if err == nil && int8(intAttr(attrs, "job-state")) == ipp.JobStateHeld {
			f := NewFault(FaultJobHeld)
			return Status{Fault: f, Message: f.Message}
		}
		d.held.CompareAndSwap(id, 0)
	}
	return d.status(ctx)
}

func (d *IPPDriver) status(ctx context.Context) Status {
	req := d.request(ipp.OperationGetPrinterAttributes)
	req.OperationAttributes[ipp.AttributeRequestedAttributes] = []string{
		"printer-state", "printer-state-reasons", "printer-state-message", "printer-is-accepting-jobs"}
	resp, err := d.send(ctx, req, nil)
	if err != nil {
		f, ok := AsFault(err)
		if !ok {
			f = &Fault{Code: FaultPrinterUnknown, Message: err.Error(), Retryable: true}
		}
		return Status{Fault: f, Message: f.Message}
	}
	if len(resp.PrinterAttributes) == 0 {
		f := &Fault{Code: FaultPrinterUnknown, Message: "The printer sent no status", Retryable: true}
		return Status{Fault: f, Message: f.Message}
	}
	a := resp.PrinterAttributes[0]
	if f := faultFromReasons(strAttrs(a, "printer-state-reasons"), false); f != nil {
		return Status{Fault: f, Message: f.Message}
	}
	if accepting, ok := boolAttr(a, "printer-is-accepting-jobs"); ok && !accepting {
		f := &Fault{Code: FaultPaused, Message: "The printer is not accepting jobs: enable it on the printer or in CUPS"}
		return Status{Fault: f, Message: f.Message}
	}
	if int8(intAttr(a, "printer-state")) == ipp.PrinterStateStopped {
		f := NewFault(FaultPrinterUnknown)
		if m := strAttr(a, "printer-state-message"); m != "" {
			f.Message += ": " + m
		}
		return Status{Fault: f, Message: f.Message}
	}
	msg := strAttr(a, "printer-state-message")
	if msg == "" {
		msg = "Printer ready"
	}
	return Status{Ready: true, Message: msg}
}

func (d *IPPDriver) printerReasons(ctx context.Context) []string {
	req := d.request(ipp.OperationGetPrinterAttributes)
	req.OperationAttributes[ipp.AttributeRequestedAttributes] = []string{"printer-state-reasons"}
	resp, err := d.send(ctx, req, nil)
	if err != nil || len(resp.PrinterAttributes) == 0 {
		return nil
	}
	return strAttrs(resp.PrinterAttributes[0], "printer-state-reasons")
}

// Close drops the idle connections to the printer.
func (d *IPPDriver) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

func (d *IPPDriver) request(op int16) *ipp.Request {
	req := ipp.NewRequest(op, d.reqID.Add(1))
	req.OperationAttributes[ipp.AttributePrinterURI] = d.printerURI
	req.OperationAttributes[ipp.AttributeRequestingUserName] = ippUser
	return req
}

// send POSTs a request, retrying server-error-busy with backoff. Transport
// failures become an offline fault.
func (d *IPPDriver) send(ctx context.Context, req *ipp.Request, doc []byte) (*ipp.Response, error) {
	backoff := d.BusyBackoff
	for attempt := 0; ; attempt++ {
		resp, err := d.roundTrip(ctx, req, doc)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode < 0x0100:
			// successful-ok and its variants (e.g. ignored-or-substituted-
			// attributes): the operation was done.
			return resp, nil
		case resp.StatusCode == ipp.StatusErrorBusy:
			if attempt >= d.BusyRetries {
				return nil, NewFault(FaultBusy)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		default:
			msg := "no status message"
			if m := strAttr(resp.OperationAttributes, "status-message"); m != "" {
				msg = m
			}
			return nil, fmt.Errorf("ipp printer %s: %s: %w", d.printerURI, opName(req.Operation),
				ipp.IPPError{Status: resp.StatusCode, Message: msg})
		}
	}
}

// roundTrip is one HTTP POST. Unlike go-ipp's adapter it sends a
// Content-Length (printers' embedded servers often refuse chunked uploads)
// and hands back IPP error answers for send to judge.
func (d *IPPDriver) roundTrip(ctx context.Context, req *ipp.Request, doc []byte) (*ipp.Response, error) {
	payload, err := req.Encode()
	if err != nil {
		return nil, fmt.Errorf("ipp printer: encode %s: %w", opName(req.Operation), err)
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, d.postURL, io.MultiReader(bytes.NewReader(payload), bytes.NewReader(doc)))
	if err != nil {
		return nil, err
	}
	httpReq.ContentLength = int64(len(payload) + len(doc))
	httpReq.Header.Set("Content-Type", ipp.ContentTypeIPP)
	httpResp, err := d.client.Do(httpReq)
	if err != nil {
		return nil, &Fault{Code: FaultOffline, Message: fmt.Sprintf("Printer %s unreachable: check power, cable and network (%v)", d.printerURI, err), Retryable: true}
	}
	defer httpResp.Body.Close()
	if httpResp.StatusCode != http.StatusOK {
		return nil, &Fault{Code: FaultOffline, Message: fmt.Sprintf("Printer %s answered HTTP %d: check the printer URI", d.printerURI, httpResp.StatusCode), Retryable: true}
	}
	// Answers are attribute lists; 4 MiB is far beyond any of them.
	raw, err := io.ReadAll(io.LimitReader(httpResp.Body, 4<<20))
	if err != nil {
		return nil, &Fault{Code: FaultOffline, Message: fmt.Sprintf("Printer %s: reading the answer: %v", d.printerURI, err), Retryable: true}
	}
	resp, err := ipp.NewResponseDecoder(bytes.NewReader(raw)).Decode(nil)
	if err != nil {
		return nil, fmt.Errorf("ipp printer %s: %s: undecodable answer: %w", d.printerURI, opName(req.Operation), err)
	}
	return resp, nil
}

func opName(op int16) string {
	switch op {
	case ipp.OperationPrintJob:
		return "Print-Job"
	case ipp.OperationGetJobAttributes:
		return "Get-Job-Attributes"
	case ipp.OperationGetPrinterAttributes:
		return "Get-Printer-Attributes"
	case ipp.OperationGetJobs:
		return "Get-Jobs"
	}
	return fmt.Sprintf("operation 0x%04x", op)
}

// faultKeywords are printer-state-reasons that stop a card printer at any
// severity (ippeveprinter, for one, reports an empty tray as -warning or
// -report). Earlier entries win when several are present.
var faultKeywords = []struct{ keyword, code string }{
	{"offline", FaultOffline},
	{"shutdown", FaultOffline},
	{"connecting-to-device", FaultOffline},
	{"timed-out", FaultOffline},
	{"media-jam", FaultMediaJam},
	{"media-empty", FaultMediaEmpty},
	{"media-needed", FaultMediaEmpty},
	{"input-tray-missing", FaultMediaEmpty},
	{"marker-supply-empty", FaultRibbonEmpty},
	{"toner-empty", FaultRibbonEmpty},
	{"cover-open", FaultCoverOpen},
	{"door-open", FaultCoverOpen},
	{"paused", FaultPaused},
	{"moving-to-paused", FaultPaused},
}

// faultFromReasons maps printer-state-reasons to a Fault. Keywords outside
// faultKeywords count only with the -error suffix, or with any suffix when
// anyUnknown (a job was aborted and any reason may explain it).
func faultFromReasons(reasons []string, anyUnknown bool) *Fault {
	type reason struct{ keyword, severity string }
	parsed := make([]reason, 0, len(reasons))
	for _, r := range reasons {
		rs := reason{keyword: r}
		for _, sev := range []string{"-error", "-warning", "-report"} {
			if k, ok := strings.CutSuffix(r, sev); ok {
				rs = reason{k, sev}
				break
			}
		}
		parsed = append(parsed, rs)
	}
	for _, fk := range faultKeywords {
		for _, r := range parsed {
			if r.keyword == fk.keyword {
				return NewFault(fk.code)
			}
		}
	}
	for _, r := range parsed {
		if r.keyword == "none" || strings.HasSuffix(r.keyword, "-low") {
			continue
		}
		if r.severity == "-error" || anyUnknown {
			return NewFault(r.keyword)
		}
	}
	return nil
}

func intAttr(a ipp.Attributes, name string) int {
	if v := a[name]; len(v) > 0 {
		if i, ok := v[0].Value.(int); ok {
			return i
		}
	}
	return 0
}

func boolAttr(a ipp.Attributes, name string) (bool, bool) {
	if v := a[name]; len(v) > 0 {
		b, ok := v[0].Value.(bool)
		return b, ok
	}
	return false, false
}

func strAttr(a ipp.Attributes, name string) string {
	if s := strAttrs(a, name); len(s) > 0 {
		return s[0]
	}
	return ""
}

func strAttrs(a ipp.Attributes, name string) []string {
	var out []string
	for _, v := range a[name] {
		if s, ok := v.Value.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
