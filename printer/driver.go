package printer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"id06/order"
)

// Job is the print job of one card. ID names the card, not the attempt
// (see JobID): a resumed print sends the same ID again, and PrintOnce
// prints each ID once, however often it is called.
type Job struct {
	ID         string
	CardNumber string
	OrderID    string
	PDF        []byte
}

// Driver sends card faces to a printer and answers for them afterwards.
type Driver interface {
	// Lookup asks the printer what became of a job, from the printer's own
	// records (job history, hot folder, simulator state), so that a
	// restarted station, or another lane after a failover, can tell.
	Lookup(ctx context.Context, jobID string) (JobStatus, error)
	// Submit hands a job to the printer without asking first; PrintOnce
	// holds the one rule that makes this safe (ask, then submit).
	Submit(ctx context.Context, job Job) error
	// Wait blocks while the job is pending and the printer reports no
	// fault, then answers as Lookup does.
	Wait(ctx context.Context, jobID string) (JobStatus, error)
	Status(ctx context.Context) Status
	Close() error
}

// JobState is what a printer knows of one job.
type JobState int

const (
	// JobUnknown: the printer has no record of the job: it was never handed
	// over, or the printer lost it before printing. Submitting it prints one card.
	JobUnknown JobState = iota
	// JobPending: the printer has the job and has not finished it; it must
	// not be submitted again.
	JobPending
	// JobDone: printed (for a hot folder: handed over).
	JobDone
	// JobFailed: the printer gave the job up (aborted, cancelled) without
	// a card; submitting it again prints one card.
	JobFailed
)

func (s JobState) String() string {
	switch s {
	case JobPending:
		return "pending"
	case JobDone:
		return "done"
	case JobFailed:
		return "failed"
	}
	return "unknown"
}

// JobStatus is a printer's answer to "what happened to job X?".
type JobStatus struct {
	State JobState
	// Fault is why a pending job does not progress, or why a failed job
	// failed, when the printer says.
	Fault *Fault
}

// PrintOnce prints a job exactly once however often it is called, also
// across station restarts and lanes: it asks the printer about the job
// first, submits only a job the printer does not have or gave up, and
// waits for it. A printer fault returns a *Fault; the job stays where it is
// (not submitted, or pending at the printer) and PrintOnce may be called
// again once the fault clears.
func PrintOnce(ctx context.Context, d Driver, job Job) error {
	if err := checkJob(job); err != nil {
		return err
	}
	st, err := d.Lookup(ctx, job.ID)
	for submitted := false; ; {
		if err != nil {
			return err
		}
		switch st.State {
		case JobDone:
			return nil
		case JobPending:
			if st.Fault != nil {
				return st.Fault
			}
		default:
			if submitted {
				// The printer gave up (or lost) the card just sent: say why;
				// the next call sends it again.
				if st.Fault != nil {
					return st.Fault
				}
				return NewFault(FaultJobAborted)
			}
			if s := d.Status(ctx); s.Fault != nil {
				return s.Fault
			}
			if err := d.Submit(ctx, job); err != nil {
				return err
			}
			submitted = true
		}
		st, err = d.Wait(ctx, job.ID)
	}
}

// Status is the printer's state for the operator page and the pipeline.
type Status struct {
	Ready   bool
	Fault   *Fault
	Message string
}

// Fault is a printer condition that stops printing.
//
// Retryable means the station may simply try again later (busy, offline);
// otherwise an operator has to act (refill cards, replace ribbon, clear a
// jam) and the station pauses until Status reports Ready.
type Fault struct {
	Code      string
	Message   string
	Retryable bool
}

func (f *Fault) Error() string { return "printer fault " + f.Code + ": " + f.Message }

// Fault codes, after IPP printer-state-reasons keywords (RFC 8011 §5.4.12).
const (
	FaultOffline     = "offline"
	FaultMediaEmpty  = "media-empty"
	FaultMediaJam    = "media-jam"
	FaultRibbonEmpty = "marker-supply-empty"
	FaultBusy        = "busy"
	FaultCoverOpen   = "cover-open"
	FaultPaused      = "paused"
	FaultJobAborted  = "job-aborted"
	FaultJobHeld     = "job-held"
	// FaultPrinterUnknown is a stop the driver cannot name more precisely.
	FaultPrinterUnknown = "other"
)

// faultMessages are what the operator reads.
var faultMessages = map[string]string{
	FaultOffline:        "Printer offline: check power, cable and network",
	FaultMediaEmpty:     "Out of cards: refill the card hopper",
	FaultMediaJam:       "Card jam: open the printer and remove the stuck card",
	FaultRibbonEmpty:    "Ribbon empty: replace the ribbon",
	FaultBusy:           "Printer busy: retrying",
	FaultCoverOpen:      "Printer cover open: close it",
	FaultPaused:         "Printer paused: resume it on the printer",
	FaultJobAborted:     "The printer aborted the card; it will be printed again",
	FaultJobHeld:        "The printer holds the card job: release it on the printer or in CUPS",
	FaultPrinterUnknown: "The printer stopped: check its display",
}

// NewFault builds a Fault with the operator message for a known code.
func NewFault(code string) *Fault {
	msg, ok := faultMessages[code]
	if !ok {
		msg = "Printer reports " + code + ": check the printer"
	}
	return &Fault{Code: code, Message: msg, Retryable: code == FaultBusy || code == FaultOffline || code == FaultJobAborted}
}

// AsFault returns the *Fault inside err, if any.
func AsFault(err error) (*Fault, bool) {
	var f *Fault
	ok := errors.As(err, &f)
	return f, ok
}

// driverOrNil keeps a failed constructor's nil pointer out of the Driver
// interface, where it would not compare equal to nil.
func driverOrNil[D Driver](d D, err error) (Driver, error) {
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Dirs are where drivers keep their files when the spec names none.
type Dirs struct {
	Spool string // the hot folder of a bare "spool"
	Sim   string // the simulated printer's state; "" keeps it in memory
}

// Open opens a printer from a spec: "spool" (the hot folder dirs.Spool),
// "spool:DIR", "ipp:URI" (http://host:port/ipp/print, ipp://…, ipps://…; a
// bare URI works too) or "sim" with options joined by colons
// ("sim:cards=5:jam-after=20:print-time=2s", see SimOptions).
func Open(spec string, dirs Dirs) (Driver, error) {
	p, err := parseSpec(spec, dirs.Spool)
	if err != nil {
		return nil, err
	}
	switch p.kind {
	case "spool":
		return driverOrNil(NewSpoolDriver(p.arg))
	case "ipp":
		return driverOrNil(NewIPPDriver(p.arg))
	}
	p.sim.StateDir = dirs.Sim
	return driverOrNil(OpenSimDriver(p.sim))
}

// Identity names the device a spec drives, so that two lanes are never
// given the same printer: the cleaned hot folder or the printer URI. The
// simulator has none ("", each lane gets its own).
func Identity(spec, spoolDefault string) (string, error) {
	p, err := parseSpec(spec, spoolDefault)
	if err != nil {
		return "", err
	}
	switch p.kind {
	case "spool":
		abs, err := filepath.Abs(p.arg)
		if err != nil {
			return "", fmt.Errorf("printer %q: %w", spec, err)
		}
		return "spool:" + abs, nil
	case "ipp":
		d, err := NewIPPDriver(p.arg)
		if err != nil {
			return "", err
		}
		return d.printerURI, nil
	}
	return "", nil
}

type parsedSpec struct {
	kind, arg string
	sim       SimOptions
}

func parseSpec(spec, spoolDefault string) (parsedSpec, error) {
	for _, scheme := range []string{"ipp://", "ipps://", "http://", "https://"} {
		if strings.HasPrefix(spec, scheme) {
			spec = "ipp:" + spec // a bare printer URI is a mistake easily forgiven
		}
	}
	kind, arg, _ := strings.Cut(spec, ":")
	p := parsedSpec{kind: kind, arg: arg}
	switch kind {
	case "spool":
		if p.arg == "" {
			p.arg = spoolDefault
		}
		if p.arg == "" {
			return p, errors.New(`printer "spool": no spool directory given; use spool:DIR`)
		}
	case "ipp":
		if arg == "" {
			return p, errors.New(`printer "ipp": no printer URI given; use ipp:http://HOST:PORT/ipp/print or ipp:ipp://HOST/printers/QUEUE`)
		}
		if _, err := NewIPPDriver(arg); err != nil {
			return p, err
		}
	case "sim":
		var err error
		if p.sim, err = parseSimOptions(arg); err != nil {
			return p, fmt.Errorf("printer %q: %w", spec, err)
		}
	default:
		return p, fmt.Errorf("printer %q: unknown kind %q (want spool[:DIR], ipp:URI or sim[:cards=N][:jam-after=N][:print-time=DURATION])", spec, kind)
	}
	return p, nil
}

// parseSimOptions reads "cards=5:jam-after=20:print-time=2s" (any subset,
// any order; "" is the endless, instant, fault-free simulator).
func parseSimOptions(s string) (SimOptions, error) {
	var o SimOptions
	if s == "" {
		return o, nil
	}
	seen := map[string]bool{}
	for _, opt := range strings.Split(s, ":") {
		k, v, ok := strings.Cut(opt, "=")
		if !ok || v == "" {
			return o, fmt.Errorf("simulator option %q: want NAME=VALUE (cards=N, jam-after=N, print-time=DURATION)", opt)
		}
		if seen[k] {
			return o, fmt.Errorf("simulator option %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "cards", "jam-after":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1_000_000 {
				return o, fmt.Errorf("simulator option %s=%s: want a whole number from 1 to 1000000", k, v)
			}
			if k == "cards" {
				o.Cards = n
			} else {
				o.JamAfter = n
			}
		case "print-time":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > 10*time.Minute {
				return o, fmt.Errorf("simulator option print-time=%s: want a duration from 0 to 10m, e.g. 2s", v)
			}
			o.PrintTime = d
		default:
			return o, fmt.Errorf("unknown simulator option %q (want cards=N, jam-after=N, print-time=DURATION)", k)
		}
	}
	return o, nil
}

// ErrRefused marks a job no printer will print as it is (a bad id, not a
// PDF): unlike a Fault, trying again cannot help.
var ErrRefused = errors.New("the print job is refused")

// JobID names the print job of an order's card: the card, not the attempt,
// so a resumed print replaces the spooled file instead of adding one. An
// order id that order.CheckID accepts always gives a valid job id.
func JobID(orderID, cardNumber string) string { return orderID + "_" + cardNumber }

// jobIDRE keeps job IDs safe as file names and IPP job names.
var jobIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func checkJob(j Job) error {
	if j.OrderID != "" || j.CardNumber != "" {
		if err := order.CheckID(j.OrderID); err != nil {
			return fmt.Errorf("print job %q: %v: %w", j.ID, err, ErrRefused)
		}
	}
	if !jobIDRE.MatchString(j.ID) {
		return fmt.Errorf("print job id %q is invalid: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit: %w", j.ID, ErrRefused)
	}
	if len(j.PDF) < 5 || string(j.PDF[:5]) != "%PDF-" {
		return fmt.Errorf("print job %s: the document is not a PDF: %w", j.ID, ErrRefused)
	}
	return nil
}
