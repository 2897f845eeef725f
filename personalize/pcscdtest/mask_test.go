package pcscdtest

import "testing"

func TestMaskSecrets(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00000070 APDU: 00 20 00 80 08 31 32 33 34 35 36 FF FF ", "00000070 APDU: 00 20 00 80 08 ** ** ** ** ** ** ** **"},
		{"1 APDU: 00 24 00 81 10 31 32 33 34 35 36 37 38 38 37 36 35 34 33 32 31", "1 APDU: 00 24 00 81 10 ** ** ** ** ** ** ** ** ** ** ** ** ** ** ** **"},
		{"1 APDU: 00 2c 00 80 10 31 32", "1 APDU: 00 2c 00 80 10 ** **"},
		{"1 APDU: 00 20 00 80 00 ", "1 APDU: 00 20 00 80 00 "},
		{"1 APDU: 00 CB 3F FF 03 5C 01 7E 00 ", "1 APDU: 00 CB 3F FF 03 5C 01 7E 00 "},
		{"1 SW: 90 00", "1 SW: 90 00"},
	}
	for _, tc := range tests {
		if got := maskSecrets(tc.in); got != tc.want {
			t.Errorf("maskSecrets(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
