package personalize

import (
	"context"
	"fmt"
	"strings"

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
// with default blank stock (state kept in simStateDir, "" = in memory);
// "pcsc" is the first PC/SC reader with a card; "pcsc:NAME" a named one.
func OpenReader(spec string, simStateDir string) (Reader, error) {
	switch {
	case spec == "sim":
		return emulator.NewReader(SimReaderName, emulator.DefaultStock(), simStateDir), nil
	case spec == "pcsc":
		return pcsc.Open("")
	case strings.HasPrefix(spec, "pcsc:"):
		return pcsc.Open(strings.TrimPrefix(spec, "pcsc:"))
	}
	return nil, fmt.Errorf("personalize: unknown reader %q: use sim, pcsc or pcsc:NAME", spec)
}
