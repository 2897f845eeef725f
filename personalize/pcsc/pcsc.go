// Package pcsc connects real readers through the PC/SC daemon (pcscd) with
// github.com/ebfe/scard and exposes their cards as apdu.Card.
package pcsc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"id06/personalize/apdu"
)

// Errors a person can act on.
var (
	ErrNoService = errors.New("PC/SC service not available: is pcscd running? (apt-get install pcscd)")
	ErrNoReader  = errors.New("no smart card reader found: is the reader plugged in and known to pcscd?")
	ErrInUse     = errors.New("the card is in use by another program (exclusive access refused)")
)

// pollInterval is how often a wait re-checks ctx: GetStatusChange itself
// cannot take a context.
const pollInterval = 250 * time.Millisecond

func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, scard.ErrNoService), errors.Is(err, scard.ErrServiceStopped):
		return fmt.Errorf("pcsc: %s: %w", op, ErrNoService)
	case errors.Is(err, scard.ErrNoReadersAvailable):
		return fmt.Errorf("pcsc: %s: %w", op, ErrNoReader)
	case errors.Is(err, scard.ErrRemovedCard), errors.Is(err, scard.ErrNoSmartcard):
		return fmt.Errorf("pcsc: %s: %w", op, apdu.ErrCardRemoved)
	case errors.Is(err, scard.ErrSharingViolation):
		return fmt.Errorf("pcsc: %s: %w", op, ErrInUse)
	}
	return fmt.Errorf("pcsc: %s: %w", op, err)
}

// Readers lists the reader names pcscd knows.
func Readers() ([]string, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, wrap("connecting to pcscd", err)
	}
	defer ctx.Release()
	return listReaders(ctx)
}

func listReaders(ctx *scard.Context) ([]string, error) {
	names, err := ctx.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) || (err == nil && len(names) == 0) {
		return nil, ErrNoReader
	}
	return names, wrap("listing readers", err)
}

// Reader is one PC/SC reader.
type Reader struct {
	mu   sync.Mutex
	ctx  *scard.Context
	name string
}

// Open connects to pcscd and picks a reader: the first whose name contains
// name (as yubico-piv-tool -r does), or with name "" the first reader
// holding a card, else the first reader.
func Open(name string) (*Reader, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, wrap("connecting to pcscd", err)
	}
	names, err := listReaders(ctx)
	if err != nil {
		ctx.Release()
		return nil, err
	}
	pick := ""
	if name != "" {
		for _, n := range names {
			if strings.Contains(n, name) {
				pick = n
				break
			}
		}
		if pick == "" {
			ctx.Release()
			return nil, fmt.Errorf("pcsc: no reader named %q (readers: %s)", name, strings.Join(names, ", "))
		}
	} else {
		pick = names[0]
		states := make([]scard.ReaderState, len(names))
		for i, n := range names {
			states[i] = scard.ReaderState{Reader: n, CurrentState: scard.StateUnaware}
		}
		if err := ctx.GetStatusChange(states, 0); err == nil {
			for _, s := range states {
				if s.EventState&scard.StatePresent != 0 {
					pick = s.Reader
					break
				}
			}
		}
	}
	return &Reader{ctx: ctx, name: pick}, nil
}

// Name is the reader's PC/SC name.
func (r *Reader) Name() string { return r.name }

// Connect waits for a card in the reader and connects to it exclusively.
func (r *Reader) Connect(ctx context.Context) (apdu.Card, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		return nil, errors.New("pcsc: reader is closed")
	}
	state := []scard.ReaderState{{Reader: r.name, CurrentState: scard.StateUnaware}}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := r.ctx.GetStatusChange(state, pollInterval)
		if err != nil && !errors.Is(err, scard.ErrTimeout) {
			return nil, wrap("waiting for a card in "+r.name, err)
		}
		if err == nil {
			if state[0].EventState&scard.StatePresent != 0 {
				break
			}
			state[0].CurrentState = state[0].EventState &^ scard.StateChanged
		}
	}
	c, err := r.ctx.Connect(r.name, scard.ShareExclusive, scard.ProtocolAny)
	if err != nil {
		return nil, wrap("connecting to the card in "+r.name, err)
	}
	st, err := c.Status()
	if err != nil {
		c.Disconnect(scard.LeaveCard)
		return nil, wrap("reading the card status", err)
	}
	return &card{c: c, atr: st.Atr, reader: r.name}, nil
}

// Close releases the PC/SC context.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		return nil
	}
	err := r.ctx.Release()
	r.ctx = nil
	return wrap("releasing the context", err)
}

// scardCard is the part of *scard.Card a connected card uses.
type scardCard interface {
	Transmit(cmd []byte) ([]byte, error)
	Reconnect(mode scard.ShareMode, proto scard.Protocol, disp scard.Disposition) error
	Disconnect(d scard.Disposition) error
}

type card struct {
	mu     sync.Mutex
	c      scardCard
	atr    []byte
	reader string
}

func (c *card) ATR() []byte { return append([]byte(nil), c.atr...) }

// Transmit sends one APDU. If another program reset the card, it
// reconnects once and retries; the card's security status is lost then, so
// the caller sees the card's own answer to that.
func (c *card) Transmit(ctx context.Context, b []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil, errors.New("pcsc: card is closed")
	}
	out, err := c.c.Transmit(b)
	if errors.Is(err, scard.ErrResetCard) {
		if err = c.c.Reconnect(scard.ShareExclusive, scard.ProtocolAny, scard.LeaveCard); err != nil {
			return nil, wrap("reconnecting after a card reset in "+c.reader, err)
		}
		out, err = c.c.Transmit(b)
	}
	if err != nil {
		return nil, wrap("transmit to the card in "+c.reader, err)
	}
	if len(out) < 2 {
		// vpcd (and some readers) answer an empty response when the card
		// leaves mid-command; the station must treat a mute card alike.
		return nil, fmt.Errorf("pcsc: the card in %s gave no answer (removed or mute): %w", c.reader, apdu.ErrCardRemoved)
	}
	return out, nil
}

// Close disconnects and resets the card, so no security status outlives
// the session.
func (c *card) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil
	}
	err := c.c.Disconnect(scard.ResetCard)
	c.c = nil
	if errors.Is(err, scard.ErrRemovedCard) || errors.Is(err, scard.ErrNoSmartcard) {
		return nil
	}
	return wrap("disconnecting", err)
}
