package personalize

import (
	"context"
	"fmt"
	"strings"
	"time"

	"id06/personalize/apdu"
	"id06/personalize/emulator"
	"id06/personalize/pcsc"
)

// Reader is a card reader holding at most one card.
type Reader interface {
	Name() string
	Connect(ctx context.Context) (apdu.Card, error)
}

// Ejector is implemented by readers that can move the card out (the
// simulated reader; a real one needs a card transport).
type Ejector interface {
	Eject(ctx context.Context) error
}

// SimReaderName is the name of the simulated reader OpenReader("sim") returns.
const SimReaderName = "Simulated PIV reader"

// OpenReader opens a reader by spec: "sim" is the in-process emulator fed
// with blanks of the named stock profile (state kept in simStateDir, "" =
// in memory); "sim:apdu-delay=DURATION" the same with each APDU taking that
// long, as a real chip's EEPROM writes do; "pcsc" is the first PC/SC reader
// with a card; "pcsc:NAME" a named one.
func OpenReader(spec, simStateDir, stock string) (Reader, error) {
	blanks := func() (*emulator.Reader, error) {
		es, err := emulator.StockNamed(stock)
		if err != nil {
			return nil, fmt.Errorf("personalize: simulated reader: %w", err)
		}
		return emulator.NewReader(SimReaderName, es, simStateDir), nil
	}
	switch {
	case spec == "sim":
		return blanks()
	case strings.HasPrefix(spec, "sim:apdu-delay="):
		d, err := time.ParseDuration(strings.TrimPrefix(spec, "sim:apdu-delay="))
		if err != nil || d < 0 || d > time.Second {
			return nil, fmt.Errorf("personalize: reader %q: the APDU delay must be a duration from 0 to 1s, e.g. sim:apdu-delay=20ms", spec)
		}
		r, err := blanks()
		if err != nil {
			return nil, err
		}
		return slowReader{r, d}, nil
	case spec == "pcsc" || strings.HasPrefix(spec, "pcsc:"):
		r, err := pcsc.Open(strings.TrimPrefix(strings.TrimPrefix(spec, "pcsc"), ":"))
		if err != nil {
			return nil, err // not a nil *pcsc.Reader inside a non-nil Reader
		}
		return r, nil
	}
	return nil, fmt.Errorf("personalize: unknown reader %q: use sim, sim:apdu-delay=DURATION, pcsc or pcsc:NAME", spec)
}

// slowReader is the simulated reader with real-chip timing, so that crash
// tests can catch the station mid-write.
type slowReader struct {
	*emulator.Reader
	delay time.Duration
}

func (r slowReader) Connect(ctx context.Context) (apdu.Card, error) {
	c, err := r.Reader.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return slowCard{c, r.delay}, nil
}

type slowCard struct {
	apdu.Card
	delay time.Duration
}

func (c slowCard) Transmit(ctx context.Context, b []byte) ([]byte, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(c.delay):
	}
	return c.Card.Transmit(ctx, b)
}
