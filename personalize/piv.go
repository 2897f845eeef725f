package personalize

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"

	"id06/personalize/apdu"
)

var pivAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}

const (
	keyPIN       = 0x80
	keyPUK       = 0x81
	keyMgmt      = 0x9B
	slotPIVAuth  = 0x9A
	slotCardAuth = 0x9E
	algECCP256   = 0x11
	alg3DES      = 0x03
	algAES256    = 0x0C
)

var mgmtKeyLen = map[byte]int{0x03: 24, 0x08: 16, 0x0A: 24, 0x0C: 32}

// session is one PIV conversation with a card.
type session struct {
	card     apdu.Card
	extended bool
}

func (s *session) do(ctx context.Context, cmd apdu.Command) ([]byte, error) {
	return apdu.Do(ctx, s.card, cmd)
}

func (s *session) selectPIV(ctx context.Context) error {
	if _, err := s.do(ctx, apdu.Command{INS: 0xA4, P1: 0x04, Data: pivAID, Le: 256}); err != nil {
		return fmt.Errorf("select PIV application: %w", err)
	}
	return nil
}

// getData reads one data object and returns it as stored: 53 L value.
func (s *session) getData(ctx context.Context, tag uint) ([]byte, error) {
	for {
		cmd := apdu.Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: apdu.TLV(0x5C, tagBytes(tag)), Le: 256}
		if s.extended {
			cmd.Le, cmd.Extended = 65536, true
		}
		b, err := s.do(ctx, cmd)
		if s.fallBack(err) {
			continue
		}
		return b, err
	}
}

// putData writes one container (53 L value as built by container()).
func (s *session) putData(ctx context.Context, tag uint, c []byte) error {
	data := append(apdu.TLV(0x5C, tagBytes(tag)), c...)
	for {
		_, err := s.do(ctx, apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: data, Extended: s.extended && len(data) > 255})
		if s.fallBack(err) {
			continue
		}
		return err
	}
}

// fallBack switches to short APDUs when a card or reader configured for
// extended length refuses them with 6700, and tells the caller to retry.
func (s *session) fallBack(err error) bool {
	if s.extended && errors.Is(err, apdu.ErrWrongLength) {
		s.extended = false
		return true
	}
	return false
}

func tagBytes(tag uint) []byte {
	switch {
	case tag > 0xFFFF:
		return []byte{byte(tag >> 16), byte(tag >> 8), byte(tag)}
	case tag > 0xFF:
		return []byte{byte(tag >> 8), byte(tag)}
	}
	return []byte{byte(tag)}
}

func mgmtCipher(alg byte, key []byte) (cipher.Block, error) {
	if alg == 0x03 {
		return des.NewTripleDESCipher(key)
	}
	return aes.NewCipher(key)
}

// authenticate performs management key mutual authentication (SP 800-73-4
// part 2 appendix A.1): the card sends an encrypted witness, we return it
// decrypted with our challenge, the card proves itself by encrypting the
// challenge.
func (s *session) authenticate(ctx context.Context, alg byte, key []byte) error {
	blk, err := mgmtCipher(alg, key)
	if err != nil {
		return err
	}
	n := blk.BlockSize()
	resp, err := s.do(ctx, apdu.Command{INS: 0x87, P1: alg, P2: keyMgmt, Data: apdu.TLV(0x7C, apdu.TLV(0x80, nil)), Le: 256})
	if err != nil {
		return fmt.Errorf("management key authentication (witness): %w", err)
	}
	witness, err := dynAuthField(resp, 0x80)
	if err != nil || len(witness) != n {
		return fmt.Errorf("%w (%v)", errBadWitness, err)
	}
	plain := make([]byte, n)
	blk.Decrypt(plain, witness)
	challenge := make([]byte, n)
	if _, err := rand.Read(challenge); err != nil {
		return err
	}
	resp, err = s.do(ctx, apdu.Command{INS: 0x87, P1: alg, P2: keyMgmt,
		Data: apdu.TLV(0x7C, append(apdu.TLV(0x80, plain), apdu.TLV(0x81, challenge)...)), Le: 256})
	if err != nil {
		return fmt.Errorf("management key authentication: %w", err)
	}
	got, err := dynAuthField(resp, 0x82)
	if err != nil {
		return fmt.Errorf("management key authentication: %w", err)
	}
	want := make([]byte, n)
	blk.Encrypt(want, challenge)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return errCardProof
	}
	return nil
}

// errBadWitness: the card's witness is not one block of the algorithm asked
// for (a card with another key algorithm may answer so).
var errBadWitness = errors.New("management key authentication: bad witness from card")

// dynAuthField extracts tag from a 7C dynamic authentication template.
func dynAuthField(resp []byte, tag uint) ([]byte, error) {
	items, err := apdu.UnwrapItems(resp, 0x7C)
	if err != nil {
		return nil, err
	}
	v, ok := apdu.Find(items, tag)
	if !ok {
		return nil, fmt.Errorf("response lacks tag %02X", tag)
	}
	return v, nil
}

// generateP256 makes the card generate an ECC P-256 key in slot and returns
// its public key.
func (s *session) generateP256(ctx context.Context, slot byte) (*ecdsa.PublicKey, error) {
	resp, err := s.do(ctx, apdu.Command{INS: 0x47, P2: slot, Data: apdu.TLV(0xAC, apdu.TLV(0x80, []byte{algECCP256})), Le: 256})
	if err != nil {
		return nil, fmt.Errorf("generate key in slot %02X: %w", slot, err)
	}
	inner, err := apdu.Unwrap(resp, 0x7F49)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return ecPublicKey("generate key", inner)
}

// ecPublicKey reads the P-256 key from the EC point (86) of a public key
// template's content; what names the answer in errors.
func ecPublicKey(what string, template []byte) (*ecdsa.PublicKey, error) {
	items, err := apdu.ParseTLV(template)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	point, ok := apdu.Find(items, 0x86)
	if !ok {
		return nil, fmt.Errorf("%s: response lacks the EC point (86)", what)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return pub, nil
}

// signP256 signs a SHA-256 digest with the ECC key in slot; it returns the
// DER ECDSA signature.
func (s *session) signP256(ctx context.Context, slot byte, digest []byte) ([]byte, error) {
	data := apdu.TLV(0x7C, append(apdu.TLV(0x82, nil), apdu.TLV(0x81, digest)...))
	resp, err := s.do(ctx, apdu.Command{INS: 0x87, P1: algECCP256, P2: slot, Data: data, Le: 256})
	if err != nil {
		return nil, fmt.Errorf("sign with slot %02X: %w", slot, err)
	}
	return dynAuthField(resp, 0x82)
}

// padRef pads a PIN or PUK to the 8 bytes VERIFY and CHANGE REFERENCE DATA
// take (SP 800-73-4 part 2, VERIFY).
func padRef(ref string) ([]byte, error) {
	if len(ref) < 6 || len(ref) > 8 {
		return nil, fmt.Errorf("must be 6 to 8 characters, is %d", len(ref))
	}
	return append([]byte(ref), bytes.Repeat([]byte{0xFF}, 8-len(ref))...), nil
}

func (s *session) verifyPIN(ctx context.Context, pin string) error {
	p, err := padRef(pin)
	if err != nil {
		return fmt.Errorf("PIN %w", err)
	}
	if _, err := s.do(ctx, apdu.Command{INS: 0x20, P2: keyPIN, Data: p}); err != nil {
		return fmt.Errorf("verify PIN: %w", err)
	}
	return nil
}

func (s *session) changeReference(ctx context.Context, key byte, old, new string) error {
	o, err := padRef(old)
	if err != nil {
		return err
	}
	n, err := padRef(new)
	if err != nil {
		return err
	}
	_, err = s.do(ctx, apdu.Command{INS: 0x24, P2: key, Data: append(o, n...)})
	return err
}

// slotPublicKey reads the public key of an ECC P-256 slot with the YubiKey
// GET METADATA extension (INS F7), which needs no PIN. Cards without the
// extension answer a status error.
func (s *session) slotPublicKey(ctx context.Context, slot byte) (*ecdsa.PublicKey, error) {
	resp, err := s.do(ctx, apdu.Command{INS: 0xF7, P2: slot, Le: 256})
	if err != nil {
		return nil, err
	}
	items, err := apdu.ParseTLV(resp)
	if err != nil {
		return nil, fmt.Errorf("key metadata: %w", err)
	}
	if alg, ok := apdu.Find(items, 0x01); !ok || len(alg) != 1 || alg[0] != algECCP256 {
		return nil, fmt.Errorf("slot %02X does not hold an ECC P-256 key", slot)
	}
	pubTLV, ok := apdu.Find(items, 0x04)
	if !ok {
		return nil, errors.New("key metadata lacks the public key (04)")
	}
	return ecPublicKey("key metadata", pubTLV)
}
