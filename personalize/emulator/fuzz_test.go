package emulator_test

import (
	"context"
	"testing"

	"id06/personalize/apdu"
	"id06/personalize/emulator"
)

// FuzzTransmit feeds arbitrary APDUs to an authenticated card: it must
// answer each with a status word, never panic.
func FuzzTransmit(f *testing.F) {
	seeds := [][]byte{
		{0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8},
		{0, 0xCB, 0x3F, 0xFF, 5, 0x5C, 3, 0x5F, 0xC1, 2, 0},
		{0, 0xDB, 0x3F, 0xFF, 7, 0x5C, 3, 0x5F, 0xC1, 2, 0x53, 0},
		{0x10, 0xDB, 0x3F, 0xFF, 2, 0x5C, 3},
		{0, 0x47, 0, 0x9A, 5, 0xAC, 3, 0x80, 1, 0x11},
		{0, 0x87, 0x11, 0x9A, 6, 0x7C, 4, 0x82, 0, 0x81, 0},
		{0, 0x87, 0x11, 0x9D, 6, 0x7C, 4, 0x82, 0, 0x85, 0},
		{0, 0x24, 0, 0x80, 16, '1', '2', '3', '4', '5', '6', 0xFF, 0xFF, '1', '2', '3', '4', '5', '6', 0xFF, 0xFF},
		{0, 0xFF, 0xFF, 0xFF, 3, 3, 0x9B, 0},
		{0, 0xF7, 0, 0x9A, 0},
		{0, 0xC0, 0, 0, 0},
		{0xFF, 0xCA, 0, 0, 0},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		card := emulator.New(emulator.DefaultStock())
		mgmtAuth(t, card, emulator.DefaultManagementKey)
		if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x47, P2: 0x9A, Data: apdu.TLV(0xAC, apdu.TLV(0x80, []byte{0x11})), Le: 256}); err != nil {
			t.Fatal(err)
		}
		if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x20, P2: 0x80, Data: []byte("123456\xff\xff")}); err != nil {
			t.Fatal(err)
		}
		out, err := card.Transmit(ctx, b)
		if err != nil || len(out) < 2 {
			t.Fatalf("Transmit(% X) = % X, %v", b, out, err)
		}
	})
}
