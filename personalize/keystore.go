package personalize

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"id06/internal/atomicfile"
	"os"
	"path/filepath"
	"strings"
)

// KeyStore holds the station's three secret keys: the issuing CA key, the
// content-signing key and the master management key. The station never
// needs their bytes: it asks the store to sign or to compute an HMAC, so a
// PKCS#11 token can keep them. Certificates are public and stay in files.
type KeyStore interface {
	// Signer returns the private key called name, or an error wrapping
	// ErrNoKey when the store holds none.
	Signer(name string) (crypto.Signer, error)
	// NewSigner creates an ECC P-256 key pair called name in the store.
	NewSigner(name string) (crypto.Signer, error)
	// HMAC returns HMAC-SHA256 keyed with the secret called name, or an
	// error wrapping ErrNoKey when the store holds none.
	HMAC(name string) (PRF, error)
	// NewSecret creates a 256-bit secret called name in the store.
	NewSecret(name string) error
	// String names the store in messages.
	String() string
}

// PRF is a keyed pseudorandom function: here always HMAC-SHA256.
type PRF func(msg []byte) ([]byte, error)

// Key names in a KeyStore.
const (
	KeyCA            = "ca"
	KeyContentSigner = "content-signer"
	KeyMaster        = "mgmt-master" // master management key, the root of every card's management key
)

// ErrNoKey: the key store holds no key of that name.
var ErrNoKey = errors.New("no such key")

// FileKeyStore keeps the keys as files, mode 0600, in a directory: the
// embedded default. The CA key may live elsewhere (a configured CA).
type FileKeyStore struct {
	Dir       string
	CAKeyPath string // "" = Dir/ca-key.pem
}

const masterKeyFile = "mgmt-master.key"

func (s FileKeyStore) String() string { return "key files in " + s.Dir }

func (s FileKeyStore) path(name string) (string, error) {
	switch name {
	case KeyCA:
		if s.CAKeyPath != "" {
			return s.CAKeyPath, nil
		}
		return filepath.Join(s.Dir, caKeyFile), nil
	case KeyContentSigner:
		return filepath.Join(s.Dir, signerKeyFile), nil
	case KeyMaster:
		return filepath.Join(s.Dir, masterKeyFile), nil
	}
	return "", fmt.Errorf("personalize: unknown key %q", name)
}

// read returns the key file of name and its path; a missing file is ErrNoKey.
func (s FileKeyStore) read(name string) ([]byte, string, error) {
	path, err := s.path(name)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, path, fmt.Errorf("%s: %w", path, ErrNoKey)
	}
	return b, path, err
}

func (s FileKeyStore) Signer(name string) (crypto.Signer, error) {
	b, path, err := s.read(name)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	key, err := parsePrivateKey(block)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func (s FileKeyStore) NewSigner(name string) (crypto.Signer, error) {
	path, err := s.path(name)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return key, writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func (s FileKeyStore) HMAC(name string) (PRF, error) {
	b, path, err := s.read(name)
	if err != nil {
		return nil, err
	}
	var key []byte
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if key, err = hex.DecodeString(line); err != nil || len(key) != 32 {
				return nil, fmt.Errorf("%s: the key line is not 64 hex digits", path)
			}
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%s holds no key line", path)
	}
	return func(msg []byte) ([]byte, error) {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		return m.Sum(nil), nil
	}, nil
}

func (s FileKeyStore) NewSecret(name string) error {
	path, err := s.path(name)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	content := "# ID06 station master management key (HMAC-SHA256, NIST SP 800-108 counter-mode KDF).\n" +
		"# Every card this station made has a management key derived from it: back it up\n" +
		"# and never lose it, or no card can be re-keyed, rewritten or unblocked.\n" +
		hex.EncodeToString(key) + "\n"
	return writeNew(path, []byte(content))
}

// writeNew creates a key file readable by its owner only, refusing to
// overwrite one: a key, once made, is never silently replaced.
func writeNew(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("personalize: %w", err)
	}
	if err := atomicfile.Create(path, b, os.O_EXCL, 0o600); err != nil {
		return fmt.Errorf("personalize: write key %s: %w", path, err)
	}
	return nil
}

var _ KeyStore = FileKeyStore{}
