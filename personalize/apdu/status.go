package apdu

import "fmt"

// StatusError is a status word other than 9000. Compare with errors.Is
// against the Err* values, which match by SW.
type StatusError struct{ SW uint16 }

// Status errors PIV cards answer (SP 800-73-4 part 2 §3, ISO 7816-4 §5.1.3).
var (
	ErrWrongLength     = &StatusError{0x6700}
	ErrNotFound        = &StatusError{0x6A82}
	ErrSecurityStatus  = &StatusError{0x6982}
	ErrAuthBlocked     = &StatusError{0x6983}
	ErrConditions      = &StatusError{0x6985}
	ErrWrongData       = &StatusError{0x6A80}
	ErrMemoryFull      = &StatusError{0x6A84}
	ErrIncorrectP1P2   = &StatusError{0x6A86}
	ErrRefDataNotFound = &StatusError{0x6A88}
	ErrInsNotSupported = &StatusError{0x6D00}
)

var swText = map[uint16]string{
	0x6700: "wrong length",
	0x6A82: "data object or application not found",
	0x6982: "security status not satisfied",
	0x6983: "authentication method blocked",
	0x6985: "conditions of use not satisfied",
	0x6A80: "incorrect data in the command",
	0x6A81: "function not supported",
	0x6A84: "not enough memory on the card",
	0x6A86: "incorrect parameters P1-P2",
	0x6A88: "referenced data not found",
	0x6D00: "instruction not supported",
	0x6E00: "class not supported",
	0x6F00: "no precise diagnosis",
	0x6581: "memory failure",
	0x6884: "command chaining not supported",
	0x6883: "last command of the chain expected",
}

func (e *StatusError) Error() string {
	if t, ok := swText[e.SW]; ok {
		return fmt.Sprintf("card answered %04X: %s", e.SW, t)
	}
	return fmt.Sprintf("card answered %04X", e.SW)
}

// Is makes errors.Is(err, ErrNotFound) match any StatusError with that SW.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.SW == e.SW
}

// AuthError is a failed or queried verification (63Cx): Retries attempts remain.
type AuthError struct{ Retries int }

func (e *AuthError) Error() string {
	return fmt.Sprintf("verification failed: %d tries left", e.Retries)
}

func statusErr(sw uint16) error {
	if sw&0xFFF0 == 0x63C0 {
		return &AuthError{Retries: int(sw & 0x0F)}
	}
	return &StatusError{SW: sw}
}
