package personalize

import (
	"encoding/hex"
	"testing"
)

func TestFASCN(t *testing.T) {
	tests := []struct {
		name string
		f    fascn
		hex  string
	}{
		// yubico-piv-tool's default CHUID FASC-N: 9999/9999/999999, CS 0,
		// ICI 1, PI 0000000000, OC 3, OI 0000, POA 1.
		{"yubico default", fascn{"9999", "9999", "999999", "0", "1", "0000000000", "3", "0000", "1"},
			"d4e739da739ced39ce739d836858210842108421c84210c3eb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.encode()
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tt.hex {
				t.Errorf("encode = %x, want %s", got, tt.hex)
			}
			back, err := decodeFASCN(got)
			if err != nil {
				t.Fatal(err)
			}
			if back != tt.f {
				t.Errorf("decode = %+v, want %+v", back, tt.f)
			}
		})
	}
}
