package personalize

import (
	"fmt"
	"slices"
	"strings"

	"id06/personalize/emulator"
)

// StockProfile holds what differs between kinds of blank card stock.
type StockProfile struct {
	Name     string // the profile's name in the configuration
	PIN, PUK string // transport PIN and PUK
	MgmtKey  []byte // transport management key
	MgmtAlg  byte   // 0x03 3DES, 0x08 AES-128, 0x0A AES-192, 0x0C AES-256
	// CardMgmtAlg is the algorithm of the per-card management key that
	// replaces the transport key: AES-256 (0x0C) unless the stock has no
	// AES, then 3DES (0x03). 0 = AES-256.
	CardMgmtAlg byte
	// ExtendedLength: card and reader take extended-length APDUs, so each
	// object is written and read with one APDU instead of a chain.
	ExtendedLength bool
	// MaxObject is the largest data object (as stored, 53 L value) the
	// stock takes; 0 = only SP 800-73-4's container maxima. Checked before
	// anything is written (the facial image is recompressed to fit), so an
	// oversized object fails the order instead of spoiling blank after
	// blank.
	MaxObject int
}

// Stock profile names.
const (
	StockGeneric = "generic" // generic PIV stock, the emulator's default
	StockYubiKey = "yubikey" // YubiKey-class stock: 3,052-byte objects
)

// StockNames lists the built-in stock profiles.
func StockNames() []string { return []string{StockGeneric, StockYubiKey} }

// Stock returns a built-in stock profile by name ("" = generic).
func Stock(name string) (StockProfile, error) {
	if name == "" {
		name = StockGeneric
	}
	if !slices.Contains(StockNames(), name) {
		return StockProfile{}, fmt.Errorf("personalize: unknown card stock %q: use %s", name, strings.Join(StockNames(), " or "))
	}
	// The built-in profiles describe the blanks the emulator makes, so the
	// simulated reader feeds the stock the station is set up for.
	es, err := emulator.StockNamed(name)
	if err != nil {
		return StockProfile{}, err
	}
	return StockProfile{Name: name, PIN: es.PIN, PUK: es.PUK, MgmtKey: es.MgmtKey, MgmtAlg: es.MgmtAlg,
		CardMgmtAlg: algAES256, ExtendedLength: true, MaxObject: es.MaxObject}, nil
}

// DefaultStock is the generic PIV stock profile.
func DefaultStock() StockProfile {
	s, _ := Stock(StockGeneric)
	return s
}

func (s StockProfile) cardMgmtAlg() byte {
	if s.CardMgmtAlg == 0 {
		return algAES256
	}
	return s.CardMgmtAlg
}

func (s StockProfile) validate() error {
	if n, ok := mgmtKeyLen[s.MgmtAlg]; !ok {
		return fmt.Errorf("personalize: stock management key algorithm %02X is not 03 (3DES), 08, 0A or 0C (AES)", s.MgmtAlg)
	} else if len(s.MgmtKey) != n {
		return fmt.Errorf("personalize: stock management key is %d bytes, algorithm %02X needs %d", len(s.MgmtKey), s.MgmtAlg, n)
	}
	if _, ok := mgmtKeyLen[s.cardMgmtAlg()]; !ok {
		return fmt.Errorf("personalize: stock per-card management key algorithm %02X is not 03 (3DES), 08, 0A or 0C (AES)", s.CardMgmtAlg)
	}
	if s.MaxObject < 0 {
		return fmt.Errorf("personalize: stock MaxObject %d is negative", s.MaxObject)
	}
	if _, err := padRef(s.PIN); err != nil {
		return fmt.Errorf("personalize: stock transport PIN: %w", err)
	}
	if _, err := padRef(s.PUK); err != nil {
		return fmt.Errorf("personalize: stock transport PUK: %w", err)
	}
	return nil
}
