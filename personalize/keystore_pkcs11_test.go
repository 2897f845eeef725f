package personalize

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"id06/personalize/emulator"
	"id06/personalize/softhsmtest"
)

func openToken(t *testing.T, tok *softhsmtest.Token) *PKCS11KeyStore {
	t.Helper()
	ks, err := OpenPKCS11(PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// importSecret puts a known generic secret into the token with the
// low-level PKCS#11 API, as a supplier's HSM tool would import an escrowed
// master key.
func importSecret(t *testing.T, tok *softhsmtest.Token, name string, value []byte) {
	t.Helper()
	p := pkcs11.New(tok.Module)
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer p.Destroy()
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil || len(slots) == 0 {
		t.Fatalf("slots %v: %v", slots, err)
	}
	sess, err := p.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(sess)
	if err := p.Login(sess, pkcs11.CKU_USER, tok.PIN); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateObject(sess, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(name)),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label(name)),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
	}); err != nil {
		t.Fatal(err)
	}
}

// The token makes keys it will not export, finds them again after a
// restart, and its HMAC (CKM_SHA256_HMAC) is HMAC-SHA256: the same KDF runs
// with the master key inside the token.
func TestPKCS11KeyStore(t *testing.T) {
	tok := softhsmtest.New(t)
	known := bytes.Repeat([]byte{0xA5, 0x3C}, 16)
	importSecret(t, tok, "known", known)
	if _, err := OpenPKCS11(PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PIN: "000000"}); err == nil {
		t.Fatal("a wrong PIN opened the token")
	}
	ks := openToken(t, tok)
	if _, err := ks.Signer(KeyCA); !errors.Is(err, ErrNoKey) {
		t.Fatalf("CA key in an empty token: %v", err)
	}
	if _, err := ks.HMAC(KeyMaster); !errors.Is(err, ErrNoKey) {
		t.Fatalf("master key in an empty token: %v", err)
	}
	ca, err := ks.NewSigner(KeyCA)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.NewSecret(KeyMaster); err != nil {
		t.Fatal(err)
	}
	for _, k := range []any{ca, mustFindSecret(t, ks, KeyMaster)} {
		attrs, err := ks.ctx.GetAttributes(k, []crypto11.AttributeType{crypto11.CkaExtractable, crypto11.CkaSensitive})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(attrs[crypto11.CkaExtractable].Value, []byte{0}) || !bytes.Equal(attrs[crypto11.CkaSensitive].Value, []byte{1}) {
			t.Errorf("%T: extractable %v, sensitive %v", k, attrs[crypto11.CkaExtractable].Value, attrs[crypto11.CkaSensitive].Value)
		}
	}
	prf, err := ks.HMAC("known")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("ID06 PIV card management key")
	got, err := prf(msg)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, known)
	m.Write(msg)
	if !bytes.Equal(got, m.Sum(nil)) {
		t.Fatalf("token HMAC % X, HMAC-SHA256 % X", got, m.Sum(nil))
	}

	ks.Close()
	ks = openToken(t, tok)
	again, err := ks.Signer(KeyCA)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(msg)
	sig, err := again.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Public().(*ecdsa.PublicKey).Equal(ca.Public()) || !ecdsa.VerifyASN1(ca.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the CA key found after a restart is not the one made")
	}
}

func mustFindSecret(t *testing.T, ks *PKCS11KeyStore, name string) *crypto11.SecretKey {
	t.Helper()
	k, err := ks.ctx.FindKey(nil, label(name))
	if err != nil || k == nil {
		t.Fatalf("secret %s: %v", name, err)
	}
	return k
}

// With the keys in a token the station makes and verifies cards as with
// files, and no key file exists: the certificates, the CHUID and the
// security object were signed inside the token, the per-card management
// key derived there.
func TestPersonalizeWithPKCS11(t *testing.T) {
	tok := softhsmtest.New(t)
	ks := openToken(t, tok)
	ctx := context.Background()
	f := newFixture(t, DefaultStock())
	dir := t.TempDir()
	p, err := New(Config{PKIDir: dir, Keys: ks, Issuer: "Test Issuer AB", Certs: testCerts, Now: f.p.now})
	if err != nil {
		t.Fatal(err)
	}
	f.p, f.dir = p, dir
	card := connect(t, emulator.NewReader("test", emulator.DefaultStock(), ""))
	res, err := p.Personalize(ctx, card, f.data, Record{})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := f.verify(t, card, f.openSecrets(t, res.SealedSecrets).PIN); err != nil || !rep.OK {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	f.cardKeySession(t, card)
	for _, name := range []string{caKeyFile, signerKeyFile, masterKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists with the keys in a token (%v)", name, err)
		}
	}
	for name, cert := range map[string]*ecdsa.PublicKey{KeyCA: p.pki.caCert.PublicKey.(*ecdsa.PublicKey), KeyContentSigner: p.pki.signerCert.PublicKey.(*ecdsa.PublicKey)} {
		k, err := ks.Signer(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, inToken := k.(crypto11.Signer); !inToken || !cert.Equal(k.Public()) {
			t.Errorf("%s: the certificate's key is not the token's", name)
		}
	}
	// A restart finds everything again, with the same master key.
	if _, err := New(Config{PKIDir: dir, Keys: ks, Issuer: "Test Issuer AB", Certs: testCerts}); err != nil {
		t.Fatalf("second start: %v", err)
	}
}
