package personalize

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// PKCS11Config selects the token that holds the station's keys. The PIN
// comes from the environment or a file the caller reads, never from the
// configuration file.
type PKCS11Config struct {
	Module     string // the token's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string
	PIN        string
}

// PKCS11KeyStore keeps the keys in a PKCS#11 token (an HSM): generated
// there, sensitive and not extractable, so signatures and HMACs are made
// inside the token. Each key is found by its label, KeyLabelPrefix + name.
type PKCS11KeyStore struct {
	ctx       *crypto11.Context
	token     string
	closeOnce sync.Once
	closeErr  error
}

// KeyLabelPrefix starts the label of every key the station keeps in a
// token: id06-ca, id06-content-signer, id06-mgmt-master.
const KeyLabelPrefix = "id06-"

// OpenPKCS11 logs into the token.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11KeyStore, error) {
	switch {
	case cfg.Module == "":
		return nil, errors.New("personalize: PKCS#11 needs the module path (pkcs11_module)")
	case cfg.TokenLabel == "":
		return nil, errors.New("personalize: PKCS#11 needs the token label (pkcs11_token)")
	case cfg.PIN == "":
		return nil, errors.New("personalize: PKCS#11 needs the token's user PIN: set STATION_PKCS11_PIN or pkcs11_pin_file")
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN})
	if err != nil {
		return nil, fmt.Errorf("personalize: PKCS#11 token %q in %s: %w", cfg.TokenLabel, cfg.Module, err)
	}
	return &PKCS11KeyStore{ctx: ctx, token: cfg.TokenLabel}, nil
}

// Close logs out of the token; later calls do nothing.
func (s *PKCS11KeyStore) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.ctx.Close() })
	return s.closeErr
}

func (s *PKCS11KeyStore) String() string { return fmt.Sprintf("PKCS#11 token %q", s.token) }

func label(name string) []byte { return []byte(KeyLabelPrefix + name) }

// newID is a random CKA_ID: crypto11 pairs the halves of a key by it.
func newID() ([]byte, error) {
	id := make([]byte, 16)
	_, err := rand.Read(id)
	return id, err
}

func (s *PKCS11KeyStore) Signer(name string) (crypto.Signer, error) {
	ks, err := s.ctx.FindKeyPairs(nil, label(name))
	return onlyKey(s, name, ks, err)
}

// onlyKey is the one key the token found under name's label (keys, err
// are the search's answer): none, or more than one, is an error.
func onlyKey[K any](s *PKCS11KeyStore, name string, keys []K, err error) (K, error) {
	var none K
	if err != nil {
		return none, fmt.Errorf("%s: key %s: %w", s, label(name), err)
	}
	switch len(keys) {
	case 0:
		return none, fmt.Errorf("%s has no key %s: %w", s, label(name), ErrNoKey)
	case 1:
		return keys[0], nil
	}
	return none, fmt.Errorf("%s holds %d keys labelled %s: delete the stray ones", s, len(keys), label(name))
}

func (s *PKCS11KeyStore) NewSigner(name string) (crypto.Signer, error) {
	id, err := newID()
	if err != nil {
		return nil, err
	}
	k, err := s.ctx.GenerateECDSAKeyPairWithLabel(id, label(name), elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("%s: generate %s: %w", s, label(name), err)
	}
	return k, nil
}

func (s *PKCS11KeyStore) HMAC(name string) (PRF, error) {
	keys, err := s.ctx.FindKeys(nil, label(name))
	k, err := onlyKey(s, name, keys, err)
	if err != nil {
		return nil, err
	}
	return func(msg []byte) (out []byte, err error) {
		// crypto11's Sum panics when the token fails the final step.
		defer func() {
			if r := recover(); r != nil {
				out, err = nil, fmt.Errorf("%s: HMAC with %s: %v", s, label(name), r)
			}
		}()
		h, err := k.NewHMAC(pkcs11.CKM_SHA256_HMAC, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: HMAC with %s: %w", s, label(name), err)
		}
		if _, err := h.Write(msg); err != nil {
			return nil, fmt.Errorf("%s: HMAC with %s: %w", s, label(name), err)
		}
		return h.Sum(nil), nil
	}, nil
}

func (s *PKCS11KeyStore) NewSecret(name string) error {
	id, err := newID()
	if err != nil {
		return err
	}
	if _, err := s.ctx.GenerateSecretKeyWithLabel(id, label(name), 256, crypto11.CipherGeneric); err != nil {
		return fmt.Errorf("%s: generate %s: %w", s, label(name), err)
	}
	return nil
}

var _ KeyStore = (*PKCS11KeyStore)(nil)
