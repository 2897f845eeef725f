package order

import "fmt"

// FormatCardNumber renders sequence number seq as PP-NNNN-NNNNNN: the
// supplier's two-letter prefix, nine digits of sequence and a Luhn check
// digit over them.
func FormatCardNumber(prefix string, seq int64) (string, error) {
	if err := CheckCardPrefix(prefix); err != nil {
		return "", err
	}
	if seq < 1 || seq > 999_999_999 {
		return "", fmt.Errorf("card number sequence %d is outside 1..999999999", seq)
	}
	digits := fmt.Sprintf("%09d", seq)
	digits += string(rune('0' + luhnDigit(digits)))
	return prefix + "-" + digits[:4] + "-" + digits[4:], nil
}

// CheckCardPrefix checks the supplier's card number prefix.
func CheckCardPrefix(prefix string) error {
	if len(prefix) != 2 || !isUpper(prefix[0]) || !isUpper(prefix[1]) {
		return fmt.Errorf("card number prefix %q must be the supplier's two capital letters A-Z", prefix)
	}
	return nil
}

// ValidCardNumber checks the form and the check digit of a card number.
func ValidCardNumber(s string) bool {
	if len(s) != 14 || s[2] != '-' || s[7] != '-' || CheckCardPrefix(s[:2]) != nil {
		return false
	}
	digits := s[3:7] + s[8:]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return luhnDigit(digits[:9]) == int(digits[9]-'0')
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
