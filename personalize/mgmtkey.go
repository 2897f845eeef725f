package personalize

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"id06/personalize/apdu"
)

// masterKey derives each card's management key from the station's master
// management key, so that nothing per card is stored and a re-issue or an
// unblock can derive the same key again.
type masterKey struct{ prf PRF }

const (
	cardKeyLabel     = "ID06 PIV card management key"
	checkValueLabel  = "ID06 master key check value"
	masterCheckFile  = "mgmt-master.kcv"
	checkValueLength = 8
)

// cardKey is the management key of the card with this UUID for algorithm
// alg: NIST SP 800-108r1 KDF in counter mode, HMAC-SHA256, label
// "ID06 PIV card management key", context UUID || alg, L = the key length.
func (m masterKey) cardKey(uuid [16]byte, alg byte) ([]byte, error) {
	n, ok := mgmtKeyLen[alg]
	if !ok {
		return nil, fmt.Errorf("management key algorithm %02X", alg)
	}
	return kdfCounter(m.prf, []byte(cardKeyLabel), append(uuid[:], alg), n)
}

// checkValue fingerprints the master key without revealing it: the first 8
// bytes the same KDF derives under its own label.
func (m masterKey) checkValue() (string, error) {
	b, err := kdfCounter(m.prf, []byte(checkValueLabel), nil, checkValueLength)
	return hex.EncodeToString(b), err
}

// loadMaster opens the master management key. The first run creates it and
// records its check value in dir; afterwards a missing or different key is
// an error, never a new key: cards already made depend on the old one.
func loadMaster(ks KeyStore, dir string) (masterKey, error) {
	checkPath := filepath.Join(dir, masterCheckFile)
	recorded, err := os.ReadFile(checkPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return masterKey{}, fmt.Errorf("personalize: %w", err)
	}
	want := strings.TrimSpace(string(recorded))
	prf, err := ks.HMAC(KeyMaster)
	switch {
	case errors.Is(err, ErrNoKey) && want != "":
		return masterKey{}, fmt.Errorf("personalize: the master management key (check value %s) is missing from %s: restore it from the backup; without it no card this station made can be re-keyed or unblocked", want, ks)
	case errors.Is(err, ErrNoKey):
		if err := ks.NewSecret(KeyMaster); err != nil {
			return masterKey{}, fmt.Errorf("personalize: create the master management key: %w", err)
		}
		if prf, err = ks.HMAC(KeyMaster); err != nil {
			return masterKey{}, fmt.Errorf("personalize: master management key: %w", err)
		}
	case err != nil:
		return masterKey{}, fmt.Errorf("personalize: master management key: %w", err)
	}
	m := masterKey{prf}
	got, err := m.checkValue()
	if err != nil {
		return masterKey{}, fmt.Errorf("personalize: master management key: %w", err)
	}
	switch {
	case want == "":
		if err := os.WriteFile(checkPath, []byte(got+"\n"), 0o600); err != nil {
			return masterKey{}, fmt.Errorf("personalize: %w", err)
		}
	case subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1:
		return masterKey{}, fmt.Errorf("personalize: the master management key in %s (check value %s) is not the one this station's cards were made with (%s, recorded in %s)", ks, got, want, checkPath)
	}
	return m, nil
}

// mgmtKey is a management key and its algorithm.
type mgmtKey struct {
	Alg byte
	Key []byte
}

// algName names a management key algorithm; the key itself never appears
// in messages.
func algName(alg byte) string {
	if n, ok := map[byte]string{0x03: "3DES", 0x08: "AES-128", 0x0A: "AES-192", 0x0C: "AES-256"}[alg]; ok {
		return n
	}
	return fmt.Sprintf("algorithm %02X", alg)
}

// wellKnownKeys are the management keys anyone would try on a card: the
// PIV/YubiKey factory key 0102…08 as 3DES and every AES length, keys that
// count up from 01, and all zeros.
func wellKnownKeys() []mgmtKey {
	var keys []mgmtKey
	factory := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 4)
	for _, alg := range []byte{0x03, 0x08, 0x0A, 0x0C} {
		n := mgmtKeyLen[alg]
		counting := make([]byte, n)
		for i := range counting {
			counting[i] = byte(i + 1)
		}
		keys = append(keys, mgmtKey{alg, factory[:n]}, mgmtKey{alg, counting}, mgmtKey{alg, make([]byte, n)})
	}
	return keys
}

// errCardProof: the card accepted our answer to its witness (so it now
// considers us authenticated) but then answered our challenge wrongly.
var errCardProof = errors.New("management key authentication: the card did not prove the same key")

// accepts reports whether the card takes key k as its management key. A
// refusal (any status word) is false; only a transport failure is an error.
func (s *session) accepts(ctx context.Context, k mgmtKey) (bool, error) {
	err := s.authenticate(ctx, k.Alg, k.Key)
	var se *apdu.StatusError
	switch {
	case err == nil, errors.Is(err, errCardProof):
		return true, nil
	case errors.As(err, &se), errors.Is(err, errBadWitness):
		return false, nil
	}
	return false, err
}

// setManagementKey replaces the card's management key (SET MANAGEMENT KEY,
// 00 FF FF FF with alg 9B length key: the Yubico-defined command most PIV
// stock takes; SP 800-73-4 leaves key changes to the vendor). The session
// must be authenticated with the current key.
func (s *session) setManagementKey(ctx context.Context, k mgmtKey) error {
	data := append([]byte{k.Alg, keyMgmt, byte(len(k.Key))}, k.Key...)
	if _, err := s.do(ctx, apdu.Command{INS: 0xFF, P1: 0xFF, P2: 0xFF, Data: data}); err != nil {
		return fmt.Errorf("set the per-card %s management key: %w", algName(k.Alg), err)
	}
	return nil
}

// refuses checks that the card does not take key k, described as what.
func (s *session) refuses(ctx context.Context, k mgmtKey, what string) error {
	ok, err := s.accepts(ctx, k)
	switch {
	case err != nil:
		return err
	case ok:
		return fmt.Errorf("the card still answers to %s (%s)", what, algName(k.Alg))
	}
	return nil
}
