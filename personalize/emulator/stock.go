// Package emulator is an in-process PIV card (NIST SP 800-73-4) that behaves
// like blank card stock, plus a simulated reader fed from a stack of blanks.
// It implements the PIV commands for real — management key mutual
// authentication, on-card ECC/RSA keys, PIN/PUK retry counters — and the
// YubiKey extensions yubico-piv-tool relies on, so both the station and
// independent tools can be tested against it.
package emulator

import (
	"bytes"
	"fmt"
)

// Management key algorithms (SP 800-78-4 table 6-2).
const (
	Alg3DES   byte = 0x03
	AlgAES128 byte = 0x08
	AlgAES192 byte = 0x0A
	AlgAES256 byte = 0x0C
)

// Asymmetric key algorithms.
const (
	AlgRSA2048 byte = 0x07
	AlgECCP256 byte = 0x11
	AlgECCP384 byte = 0x14
)

// Stock describes one kind of blank card as it leaves the card supplier.
type Stock struct {
	PIN     string // transport PIN, 6–8 digits
	PUK     string // transport PUK, 8 bytes
	MgmtAlg byte   // Alg3DES, AlgAES128, AlgAES192 or AlgAES256
	MgmtKey []byte // transport management key, 24/16/24/32 bytes by MgmtAlg
	// Capacity is the total bytes the card holds for data objects.
	Capacity int
	// MaxObject limits one data object's stored size; 0 = only Capacity.
	MaxObject int
	UID       []byte // nil = random 7-byte UID per card
}

// DefaultManagementKey is the well-known transport key 0102030405060708 x3.
var DefaultManagementKey = bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 3)

// DefaultStock is the station's default blank: PIN 123456, PUK 12345678,
// 3DES transport management key 0102030405060708 x3, ~50 KB for objects.
func DefaultStock() Stock {
	return Stock{
		PIN:      "123456",
		PUK:      "12345678",
		MgmtAlg:  Alg3DES,
		MgmtKey:  append([]byte(nil), DefaultManagementKey...),
		Capacity: 50 * 1024,
	}
}

func mgmtKeyLen(alg byte) (int, error) {
	switch alg {
	case Alg3DES, AlgAES192:
		return 24, nil
	case AlgAES128:
		return 16, nil
	case AlgAES256:
		return 32, nil
	}
	return 0, fmt.Errorf("emulator: unknown management key algorithm %#02x", alg)
}

// Validate reports a stock definition the emulator cannot run.
func (s Stock) Validate() error {
	if _, err := padPIN(s.PIN); err != nil {
		return fmt.Errorf("emulator: stock PIN: %w", err)
	}
	if len(s.PUK) < 6 || len(s.PUK) > 8 {
		return fmt.Errorf("emulator: stock PUK must be 6–8 bytes, got %d", len(s.PUK))
	}
	n, err := mgmtKeyLen(s.MgmtAlg)
	if err != nil {
		return err
	}
	if len(s.MgmtKey) != n {
		return fmt.Errorf("emulator: management key algorithm %#02x needs %d key bytes, got %d", s.MgmtAlg, n, len(s.MgmtKey))
	}
	if s.Capacity <= 0 {
		return fmt.Errorf("emulator: stock capacity must be positive, got %d", s.Capacity)
	}
	if s.UID != nil && (len(s.UID) < 4 || len(s.UID) > 10) {
		return fmt.Errorf("emulator: UID must be 4–10 bytes, got %d", len(s.UID))
	}
	return nil
}

// padPIN pads a 6–8 digit PIN with FF to the 8-byte PIV reference format.
func padPIN(pin string) ([]byte, error) {
	if len(pin) < 6 || len(pin) > 8 {
		return nil, fmt.Errorf("PIN must be 6–8 digits, got %d characters", len(pin))
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("PIN must be digits only")
		}
	}
	return padRef(pin), nil
}

func padRef(s string) []byte {
	b := bytes.Repeat([]byte{0xFF}, 8)
	copy(b, s)
	return b
}

// validPINRef reports whether b is a padded PIN as SP 800-73-4 part 2 §2.4.3
// defines it: 6–8 ASCII digits then FF padding to 8 bytes.
func validPINRef(b []byte) bool {
	if len(b) != 8 {
		return false
	}
	n := bytes.IndexByte(b, 0xFF)
	if n < 0 {
		n = 8
	}
	if n < 6 {
		return false
	}
	for _, c := range b[:n] {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, c := range b[n:] {
		if c != 0xFF {
			return false
		}
	}
	return true
}
