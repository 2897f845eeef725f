package personalize

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

const supplierAgeKeyFile = "supplier-age.key"

// recipient parses the configured age recipient, or creates (on first run)
// a development identity in dir and returns its recipient.
func recipient(sealTo, dir string) (*age.X25519Recipient, error) {
	if sealTo != "" {
		r, err := age.ParseX25519Recipient(sealTo)
		if err != nil {
			return nil, fmt.Errorf("personalize: SealTo must be an age X25519 recipient (age1…): %w", err)
		}
		return r, nil
	}
	path := filepath.Join(dir, supplierAgeKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		content := fmt.Sprintf("# development supplier identity: PINs and PUKs are sealed to it\n# public key: %s\n%s\n", id.Recipient(), id)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return nil, fmt.Errorf("personalize: write %s: %w", path, err)
		}
		return id.Recipient(), nil
	}
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "AGE-SECRET-KEY-") {
			id, err := age.ParseX25519Identity(line)
			if err != nil {
				return nil, fmt.Errorf("personalize: %s: %w", path, err)
			}
			return id.Recipient(), nil
		}
	}
	return nil, fmt.Errorf("personalize: %s holds no AGE-SECRET-KEY line", path)
}

// cardSecrets is the sealed payload; the field names are the contract with
// whoever opens it (the supplier's PIN letter process).
type cardSecrets struct {
	CardNumber string `json:"card_number"`
	PIN        string `json:"pin"`
	PUK        string `json:"puk"`
}

func seal(r age.Recipient, s cardSecrets) ([]byte, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// randomDigits returns n uniformly random decimal digits from crypto/rand.
func randomDigits(n int) (string, error) {
	var sb strings.Builder
	for range n {
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", err
		}
		sb.WriteByte(byte('0' + d.Int64()))
	}
	return sb.String(), nil
}
