package emulator_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"id06/personalize/apdu"
	"id06/personalize/emulator"
)

// BenchmarkTransmit is the in-process emulator's own cost per command, the
// floor under every pcscd figure.
func BenchmarkTransmit(b *testing.B) {
	ctx := context.Background()
	card := emulator.New(emulator.DefaultStock())
	if err := tryMgmtAuth(ctx, card, emulator.DefaultManagementKey); err != nil {
		b.Fatal(err)
	}
	put := apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Extended: true,
		Data: append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, 0x05}), apdu.TLV(0x53, make([]byte, 3000))...)}
	if _, err := apdu.Do(ctx, card, put); err != nil {
		b.Fatal(err)
	}
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x47, P2: 0x9A, Data: apdu.TLV(0xAC, apdu.TLV(0x80, []byte{0x11})), Le: 256}); err != nil {
		b.Fatal(err)
	}
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x20, P2: 0x80, Data: []byte("123456\xff\xff")}); err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	cmds := []struct {
		name string
		cmd  apdu.Command
	}{
		{"GetVersion", apdu.Command{INS: 0xFD, Le: 256}},
		{"GetData3K", apdu.Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: apdu.TLV(0x5C, []byte{0x5F, 0xC1, 0x05}), Le: 65536, Extended: true}},
		{"PutData3K", put},
		{"SignP256", apdu.Command{INS: 0x87, P1: 0x11, P2: 0x9A, Le: 256,
			Data: apdu.TLV(0x7C, append(apdu.TLV(0x82, nil), apdu.TLV(0x81, digest[:])...))}},
	}
	for _, c := range cmds {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := apdu.Do(ctx, card, c.cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
