package emulator_test

import (
	"bytes"
	"context"
	"crypto/des"
	"encoding/hex"
	"fmt"
	"testing"

	"id06/personalize/apdu"
)

func hexUID(b []byte) string { return hex.EncodeToString(b) }

func getData(tag byte) apdu.Command {
	return apdu.Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: apdu.TLV(0x5C, []byte{0x5F, 0xC1, tag}), Le: 256}
}

// tryMgmtAuth is 3DES mutual authentication as the station does it.
func tryMgmtAuth(ctx context.Context, card apdu.Card, key []byte) error {
	blk, err := des.NewTripleDESCipher(key)
	if err != nil {
		return err
	}
	out, err := apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: 0x03, P2: 0x9B, Data: apdu.TLV(0x7C, apdu.TLV(0x80, nil)), Le: 256})
	if err != nil {
		return err
	}
	if len(out) != 12 {
		return fmt.Errorf("witness answer % X", out)
	}
	w := make([]byte, 8)
	blk.Decrypt(w, out[4:])
	chal := []byte{9, 8, 7, 6, 5, 4, 3, 2}
	body := append(append(apdu.TLV(0x80, w), apdu.TLV(0x81, chal)...), apdu.TLV(0x82, nil)...)
	out, err = apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: 0x03, P2: 0x9B, Data: apdu.TLV(0x7C, body), Le: 256})
	if err != nil {
		return err
	}
	want := make([]byte, 8)
	blk.Encrypt(want, chal)
	if !bytes.HasSuffix(out, want) {
		return fmt.Errorf("card response % X", out)
	}
	return nil
}

func mgmtAuth(t *testing.T, card apdu.Card, key []byte) {
	t.Helper()
	if err := tryMgmtAuth(context.Background(), card, key); err != nil {
		t.Fatalf("management key authentication: %v", err)
	}
}
