// Package emulator is an in-process PIV card (NIST SP 800-73-4) that behaves
// like blank card stock, plus a simulated reader fed from a stack of blanks.
// It implements the PIV commands for real — management key mutual
// authentication, on-card ECC/RSA keys, PIN/PUK retry counters — and SET
// MANAGEMENT KEY (INS FF), the one card-management command most PIV stock
// takes. By default it is generic PIV stock; a stock with Yubico set also
// answers the YubiKey extensions (version, serial, metadata, import, reset)
// that YubiKey-only client paths use.
package emulator

import (
	"bytes"
	"fmt"
)

// Management key algorithms (SP 800-78-4 table 6-2; 00 is 3DES too).
const (
	Alg3DESAlias byte = 0x00
	Alg3DES      byte = 0x03
	AlgAES128    byte = 0x08
	AlgAES192    byte = 0x0A
	AlgAES256    byte = 0x0C
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
	// Yubico makes the card answer the YubiKey PIV extensions: GET
	// VERSION, GET SERIAL, GET METADATA, SET PIN RETRIES, RESET and
	// IMPORT KEY. Generic stock answers them 6D00 (INS not supported).
	Yubico bool
	// NoAES is old stock with 3DES management keys only: it lists no AES
	// in its application property template and refuses AES keys.
	NoAES bool
}

// DefaultManagementKey is the well-known transport key 0102030405060708 x3.
var DefaultManagementKey = bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 3)

// DefaultStock is the station's default blank: generic PIV stock with PIN
// 123456, PUK 12345678, 3DES transport management key 0102030405060708 x3,
// ~50 KB for objects.
func DefaultStock() Stock {
	return Stock{
		PIN:      "123456",
		PUK:      "12345678",
		MgmtAlg:  Alg3DES,
		MgmtKey:  append([]byte(nil), DefaultManagementKey...),
		Capacity: 50 * 1024,
	}
}

// YubiKeyMaxObject is the largest data object a YubiKey stores (as stored,
// 53 L value): yubico-piv-tool reads objects into a 3,072-byte buffer.
const YubiKeyMaxObject = 3052

// YubiKeyStock is YubiKey-class blank stock: the YubiKey extensions,
// objects of at most YubiKeyMaxObject bytes, about 51 KB in all, and the
// factory PIN, PUK and 3DES management key of firmware before 5.7.
func YubiKeyStock() Stock {
	s := DefaultStock()
	s.Yubico = true
	s.MaxObject = YubiKeyMaxObject
	s.Capacity = 51200
	return s
}

// StockNamed returns the emulator stock of a stock profile name:
// "generic" (DefaultStock) or "yubikey" (YubiKeyStock).
func StockNamed(name string) (Stock, error) {
	switch name {
	case "", "generic":
		return DefaultStock(), nil
	case "yubikey":
		return YubiKeyStock(), nil
	}
	return Stock{}, fmt.Errorf("emulator: unknown stock %q: use generic or yubikey", name)
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
	if s.NoAES && s.MgmtAlg != Alg3DES {
		return fmt.Errorf("emulator: 3DES-only stock cannot have an AES transport key")
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
