package personalize

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"id06/internal/integration"
)

func hmacPRF(key []byte) PRF {
	return func(msg []byte) ([]byte, error) {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		return m.Sum(nil), nil
	}
}

// The KDF agrees with OpenSSL's KBKDF (SP 800-108 counter mode, HMAC,
// 32-bit counter, label || 00 || context || [L]32), an independent
// implementation, for the lengths of every management key algorithm and a
// length that needs two PRF blocks.
func TestKDFMatchesOpenSSL(t *testing.T) {
	integration.Tool(t, "openssl", "openssl")
	key := bytes.Repeat([]byte{0x5A, 0xC3}, 16)
	uuid := [16]byte{0x3f, 0x2a, 0x11, 0x90, 0x5c, 0x41, 0x4e, 0x8b, 0x9d, 0x07, 0x6b, 0x21, 0xe4, 0x55, 0x0c, 0xaa}
	for _, n := range []int{16, 24, 32, 45} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			context := append(uuid[:], byte(n))
			got, err := kdfCounter(hmacPRF(key), []byte(cardKeyLabel), context, n)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("openssl", "kdf", "-keylen", fmt.Sprint(n),
				"-kdfopt", "mac:HMAC", "-kdfopt", "digest:SHA2-256", "-kdfopt", "hexkey:"+hex.EncodeToString(key),
				"-kdfopt", "hexsalt:"+hex.EncodeToString([]byte(cardKeyLabel)), "-kdfopt", "hexinfo:"+hex.EncodeToString(context),
				"KBKDF").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl kdf: %v\n%s", err, out)
			}
			want := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(string(out)), ":", ""))
			if hex.EncodeToString(got) != want {
				t.Fatalf("KDF % X\nOpenSSL KBKDF %s", got, want)
			}
		})
	}
}

// Each card gets its own key; the same card always the same one; 3DES and
// AES keys of one card are unrelated.
func TestCardKeysDiffer(t *testing.T) {
	m := masterKey{hmacPRF(bytes.Repeat([]byte{7}, 32))}
	a, _ := m.cardKey([16]byte{1}, algAES256)
	a2, _ := m.cardKey([16]byte{1}, algAES256)
	b, _ := m.cardKey([16]byte{2}, algAES256)
	d, _ := m.cardKey([16]byte{1}, alg3DES)
	other, _ := masterKey{hmacPRF(bytes.Repeat([]byte{8}, 32))}.cardKey([16]byte{1}, algAES256)
	if len(a) != 32 || len(d) != 24 || !bytes.Equal(a, a2) || bytes.Equal(a, b) || bytes.Equal(a[:24], d) || bytes.Equal(a, other) {
		t.Fatalf("card keys: %X %X %X %X %X", a, a2, b, d, other)
	}
}
