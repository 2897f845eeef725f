package printer

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Transport moves cards through a printer with an inline encoder: a blank
// from the hopper under the encoder's contacts, the printed card out, a
// failed one to the reject bin. Smart-card printers encode before they
// print, so a lane feeds, encodes, prints, then ejects or rejects.
type Transport interface {
	// Feed puts a blank under the encoder. A fault (out of cards, jam,
	// cover open) returns a *Fault.
	Feed(ctx context.Context) error
	// Eject sends the printed card to the output hopper.
	Eject(ctx context.Context) error
	// Reject sends the card in the printer to the reject bin.
	Reject(ctx context.Context) error
	TransportStatus(ctx context.Context) TransportStatus
	Close() error
}

// TransportStatus is the card path's state for the operator page.
type TransportStatus struct {
	Blanks            int // left in the hopper; -1 when the device does not say
	Ejected, Rejected int // cards out through the card path since it was set up, where counted
	Fault             *Fault
	Message           string
}

// ManualTransport is an operator who puts each blank into the encoder and
// takes each card out: Feed assumes the card is there (the reader says
// when it is not) and the rest is left to the operator.
type ManualTransport struct{}

// Feed trusts the operator; a missing card shows as the reader's error.
func (ManualTransport) Feed(ctx context.Context) error { return ctx.Err() }

// Eject leaves the card to the operator.
func (ManualTransport) Eject(ctx context.Context) error { return ctx.Err() }

// Reject leaves the card to the operator (the lane names it spoiled).
func (ManualTransport) Reject(ctx context.Context) error { return ctx.Err() }

// TransportStatus knows nothing of the hopper.
func (ManualTransport) TransportStatus(context.Context) TransportStatus {
	return TransportStatus{Blanks: -1, Message: "Cards inserted by hand"}
}

// Close releases nothing.
func (ManualTransport) Close() error { return nil }

// OpenTransport opens a lane's card transport: "manual", "sim" (the card
// path of the lane's simulated printer prn) or "evolis:DEVICE" (an Evolis
// printer's command channel, see OpenEvolis). "" picks sim for a simulated
// printer and manual otherwise.
func OpenTransport(spec string, prn Driver) (Transport, error) {
	sim, isSim := prn.(*SimDriver)
	if spec == "" {
		spec = "manual"
		if isSim {
			spec = "sim"
		}
	}
	if _, err := TransportIdentity(spec); err != nil {
		return nil, err
	}
	switch spec {
	case "manual":
		return ManualTransport{}, nil
	case "sim":
		if !isSim {
			return nil, errors.New(`transport "sim" is the simulated printer's own card path: use it with printer "sim"`)
		}
		return sim, nil
	}
	return OpenEvolis(strings.TrimPrefix(spec, "evolis:"))
}

// TransportIdentity checks a transport spec and names the device it
// drives, so that two lanes are never given the same one ("" for manual
// and sim, which belong to their lane).
func TransportIdentity(spec string) (string, error) {
	switch kind, arg, _ := strings.Cut(spec, ":"); {
	case spec == "manual" || spec == "sim":
		return "", nil
	case kind == "evolis":
		if _, err := OpenEvolis(arg); err != nil {
			return "", err
		}
		return spec, nil
	}
	return "", fmt.Errorf("transport %q: use manual, sim or evolis:DEVICE (e.g. evolis:/dev/usb/lp0 or evolis:tcp:HOST:PORT)", spec)
}
