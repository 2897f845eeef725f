package printer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"id06/order"
)

// Job is the print job of one card. ID names the card, not the attempt
// (see JobID): a resumed print sends the same ID again, and printing the
// same ID again must not print (or spool) a second card.
type Job struct {
	ID         string
	CardNumber string
	OrderID    string
	PDF        []byte
}

// Driver sends card faces to a printer.
type Driver interface {
	// Print blocks until the printer reports the job completed. A printer
	// fault returns a *Fault; the job is not lost and Print may be called
	// again with the same Job once the fault clears.
	Print(ctx context.Context, job Job) error
	Status(ctx context.Context) Status
	Close() error
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

// OpenDriver opens a printer from a spec: "spool" (→ spoolDefault),
// "spool:DIR", "ipp:URI" (http://host:port/ipp/print, ipp://…, ipps://…; a
// bare URI works too) or "sim".
func OpenDriver(spec string, spoolDefault string) (Driver, error) {
	for _, scheme := range []string{"ipp://", "ipps://", "http://", "https://"} {
		if strings.HasPrefix(spec, scheme) {
			spec = "ipp:" + spec // a bare printer URI is a mistake easily forgiven
		}
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "spool":
		if arg == "" {
			arg = spoolDefault
		}
		if arg == "" {
			return nil, errors.New(`printer "spool": no spool directory given; use spool:DIR`)
		}
		return driverOrNil(NewSpoolDriver(arg))
	case "ipp":
		if arg == "" {
			return nil, errors.New(`printer "ipp": no printer URI given; use ipp:http://HOST:PORT/ipp/print or ipp:ipp://HOST/printers/QUEUE`)
		}
		return driverOrNil(NewIPPDriver(arg))
	case "sim":
		if arg != "" {
			return nil, fmt.Errorf("printer %q: the simulator takes no argument", spec)
		}
		return NewSimDriver(), nil
	default:
		return nil, fmt.Errorf("printer %q: unknown kind %q (want spool[:DIR], ipp:URI or sim)", spec, kind)
	}
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
