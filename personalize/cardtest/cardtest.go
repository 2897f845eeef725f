// Package cardtest is a PIV conformance suite (NIST SP 800-73-4 part 2
// commands, SET MANAGEMENT KEY, and the YubiKey extensions on stock that
// has them) that any
// apdu.Card can be run against: the in-process emulator in unit tests, and
// the emulator behind a real pcscd in integration tests.
package cardtest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"errors"
	"testing"

	"id06/personalize/apdu"
)

// Config names the blank stock the cards under test come from.
type Config struct {
	PIN, PUK string
	MgmtAlg  byte // 0x03 3DES, 0x08/0x0A/0x0C AES-128/192/256
	MgmtKey  []byte
	// Capacity is the card's object memory; the suite overfills it to
	// check 6A84. 0 skips that check.
	Capacity int
	// Yubico: the stock answers the YubiKey extensions; otherwise the
	// suite checks that it refuses them, as generic PIV stock does.
	Yubico bool
}

// Default is the emulator's default stock.
func Default() Config {
	return Config{
		PIN: "123456", PUK: "12345678", MgmtAlg: 0x03,
		MgmtKey:  bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 3),
		Capacity: 50 * 1024,
	}
}

// Run runs the suite against cards of the default stock. open must return
// a freshly fed blank card each time it is called.
func Run(t *testing.T, open func(t *testing.T) apdu.Card) { RunConfig(t, Default(), open) }

// RunConfig runs the suite against cards of the stock cfg describes.
func RunConfig(t *testing.T, cfg Config, open func(t *testing.T) apdu.Card) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			card := open(t)
			s := &session{t: t, card: card, cfg: cfg, ctx: t.Context()}
			s.selectPIV()
			tc.run(s)
		})
	}
}

type session struct {
	t    *testing.T
	ctx  context.Context
	card apdu.Card
	cfg  Config
}

func (s *session) do(cmd apdu.Command) ([]byte, error) {
	s.t.Helper()
	return apdu.Do(s.ctx, s.card, cmd)
}

func (s *session) must(cmd apdu.Command) []byte {
	s.t.Helper()
	out, err := s.do(cmd)
	if err != nil {
		s.t.Fatalf("INS %02X P1 %02X P2 %02X: %v", cmd.INS, cmd.P1, cmd.P2, err)
	}
	return out
}

// raw sends one APDU without Do's chaining or GET RESPONSE handling.
func (s *session) raw(cmd apdu.Command) apdu.Response {
	s.t.Helper()
	b, err := cmd.Bytes()
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := s.card.Transmit(s.ctx, b)
	if err != nil {
		s.t.Fatalf("transmit % X: %v", b, err)
	}
	r, err := apdu.ParseResponse(out)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

func (s *session) wantErr(err, want error) {
	s.t.Helper()
	if err == nil {
		s.t.Fatalf("succeeded, want %v", want)
	}
	if want != nil && !errors.Is(err, want) {
		s.t.Fatalf("got %v, want %v", err, want)
	}
}

func (s *session) wantRetries(err error, n int) {
	s.t.Helper()
	ae, ok := err.(*apdu.AuthError)
	if !ok || ae.Retries != n {
		s.t.Fatalf("got %v, want 63C%X", err, n)
	}
}

var pivAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}

func (s *session) selectPIV() []byte {
	s.t.Helper()
	return s.must(apdu.Command{INS: 0xA4, P1: 0x04, Data: pivAID, Le: 256})
}

// PIN/PUK references are padded with FF to 8 bytes.
func ref(s string) []byte {
	b := bytes.Repeat([]byte{0xFF}, 8)
	copy(b, s)
	return b
}

func (s *session) verifyPIN(pin string) error {
	_, err := s.do(apdu.Command{INS: 0x20, P2: 0x80, Data: ref(pin)})
	return err
}

func (s *session) mgmtBlock(key []byte) cipher.Block {
	s.t.Helper()
	var b cipher.Block
	var err error
	if s.cfg.MgmtAlg == 0x03 {
		b, err = des.NewTripleDESCipher(key)
	} else {
		b, err = aes.NewCipher(key)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// mutualAuth runs GENERAL AUTHENTICATE witness/challenge with key and
// checks the card's answer to our challenge.
func (s *session) mutualAuth(key []byte) error {
	s.t.Helper()
	return s.mutualAuthAs(s.cfg.MgmtAlg, key)
}

// mutualAuthAs is mutualAuth naming the algorithm as alg in P1.
func (s *session) mutualAuthAs(alg byte, key []byte) error {
	s.t.Helper()
	blk := s.mgmtBlock(key)
	out, err := s.do(apdu.Command{INS: 0x87, P1: alg, P2: 0x9B, Data: tlv(0x7C, tlv(0x80, nil)), Le: 256})
	if err != nil {
		return err
	}
	enc := s.dig(out, 0x7C, 0x80)
	if len(enc) != blk.BlockSize() {
		s.t.Fatalf("witness of %d bytes, want %d", len(enc), blk.BlockSize())
	}
	w := make([]byte, len(enc))
	blk.Decrypt(w, enc)
	chal := make([]byte, blk.BlockSize())
	rand.Read(chal)
	body := append(append(tlv(0x80, w), tlv(0x81, chal)...), tlv(0x82, nil)...)
	out, err = s.do(apdu.Command{INS: 0x87, P1: alg, P2: 0x9B, Data: tlv(0x7C, body), Le: 256})
	if err != nil {
		return err
	}
	want := make([]byte, len(chal))
	blk.Encrypt(want, chal)
	if got := s.dig(out, 0x7C, 0x82); !bytes.Equal(got, want) {
		s.t.Fatalf("card's response to our challenge is % X, want % X", got, want)
	}
	return nil
}

func (s *session) auth() {
	s.t.Helper()
	if err := s.mutualAuth(s.cfg.MgmtKey); err != nil {
		s.t.Fatalf("management key authentication: %v", err)
	}
}

func tlv(tag uint, v []byte) []byte { return apdu.TLV(tag, v) }

// dig follows a path of nested tags and returns the innermost value.
func (s *session) dig(b []byte, path ...uint) []byte {
	s.t.Helper()
	for _, tag := range path {
		items, err := apdu.ParseTLV(b)
		if err != nil {
			s.t.Fatalf("parsing % X: %v", b, err)
		}
		v, ok := apdu.Find(items, tag)
		if !ok {
			s.t.Fatalf("no tag %X in % X", tag, b)
		}
		b = v
	}
	return b
}

func getDataCmd(tag []byte) apdu.Command {
	return apdu.Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: tlv(0x5C, tag), Le: 256}
}

func putDataCmd(tag, value []byte) apdu.Command {
	return apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: append(tlv(0x5C, tag), tlv(0x53, value)...)}
}
