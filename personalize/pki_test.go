package personalize

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// writeRSACA writes an RSA CA in the traditional PKCS#1 PEM form many
// existing CAs use, and returns the certificate and key paths.
func writeRSACA(t *testing.T, dir string, isCA bool) (string, string) {
	return writeRSACAUsage(t, dir, isCA, x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature)
}

func writeRSACAUsage(t *testing.T, dir string, isCA bool, usage x509.KeyUsage) (string, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "Supplier Issuing CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0),
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "supplier-ca.pem"), filepath.Join(dir, "supplier-ca.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestNewPKI(t *testing.T) {
	caDir := t.TempDir()
	caCert, caKey := writeRSACA(t, caDir, true)
	leafCert, leafKey := writeRSACA(t, t.TempDir(), false)
	otherCert, _ := writeRSACA(t, t.TempDir(), true)
	noCRLCert, noCRLKey := writeRSACAUsage(t, t.TempDir(), true, x509.KeyUsageCertSign)
	tests := []struct {
		name          string
		cert, key     string
		wantErr       string
		wantCASubject string
	}{
		{"development CA", "", "", "", "Test Issuer AB ID06 Issuing CA (development)"},
		{"configured RSA CA", caCert, caKey, "", "Supplier Issuing CA"},
		{"certificate without key", caCert, "", "both CACert and CAKey", ""},
		{"key of another CA", otherCert, caKey, "does not hold the private key", ""},
		{"not a CA", leafCert, leafKey, "not a CA", ""},
		{"CA that cannot sign CRLs", noCRLCert, noCRLKey, "lacks cRLSign", ""},
		{"missing file", filepath.Join(caDir, "nope.pem"), caKey, "no such file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := New(Config{PKIDir: dir, Certs: testCerts, CACert: tt.cert, CAKey: tt.key, Issuer: "Test Issuer AB"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.CACertificate().Subject.CommonName; got != tt.wantCASubject {
				t.Errorf("CA %q, want %q", got, tt.wantCASubject)
			}
			if err := verifyChain(p.pki.caCert, p.pki.signerCert, time.Now()); err != nil {
				t.Errorf("content signer does not chain to the CA: %v", err)
			}
			fi, err := os.Stat(filepath.Join(dir, signerKeyFile))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("content signer key: %v, mode %v", err, fi.Mode())
			}
			// A second start reuses everything.
			p2, err := New(Config{PKIDir: dir, Certs: testCerts, CACert: tt.cert, CAKey: tt.key, Issuer: "Test Issuer AB"})
			if err != nil {
				t.Fatal(err)
			}
			if !p2.pki.signerCert.Equal(p.pki.signerCert) || !p2.CACertificate().Equal(p.CACertificate()) {
				t.Error("restart issued a new CA or content signer")
			}
		})
	}
}

func TestSwitchingCAReissuesContentSigner(t *testing.T) {
	dir := t.TempDir()
	dev, err := New(Config{PKIDir: dir, Certs: testCerts, Issuer: "Test Issuer AB"})
	if err != nil {
		t.Fatal(err)
	}
	caCert, caKey := writeRSACA(t, t.TempDir(), true)
	conf, err := New(Config{PKIDir: dir, Certs: testCerts, CACert: caCert, CAKey: caKey, Issuer: "Test Issuer AB"})
	if err != nil {
		t.Fatal(err)
	}
	if conf.pki.signerCert.Equal(dev.pki.signerCert) {
		t.Fatal("content signer of the development CA kept after configuring another CA")
	}
	if err := verifyChain(conf.pki.caCert, conf.pki.signerCert, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestSealToConfiguredRecipient(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := New(Config{PKIDir: dir, Certs: testCerts, SealTo: id.Recipient().String(), Issuer: "Test Issuer AB"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, supplierAgeKeyFile)); !os.IsNotExist(err) {
		t.Errorf("a development identity was created although SealTo is set: %v", err)
	}
	sealed, err := seal(p.sealTo, cardSecrets{CardNumber: "BB-1234-567890", PIN: "385912", PUK: "70315864"})
	if err != nil {
		t.Fatal(err)
	}
	plain := openSealed(t, sealed, id)
	if want := `{"card_number":"BB-1234-567890","pin":"385912","puk":"70315864"}`; string(plain) != want {
		t.Errorf("opened %s, want %s", plain, want)
	}
	if _, err := New(Config{PKIDir: dir, Certs: testCerts, SealTo: "age1nope", Issuer: "Test Issuer AB"}); err == nil || !strings.Contains(err.Error(), "age1") {
		t.Errorf("bad recipient: %v", err)
	}
}

func TestNewSecrets(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		pin, puk, err := newSecrets(DefaultStock())
		if err != nil {
			t.Fatal(err)
		}
		if len(pin) != 6 || len(puk) != 8 || weak(pin) || weak(puk) || pin == "123456" || puk == "12345678" {
			t.Fatalf("PIN %d digits / PUK %d digits, or weak", len(pin), len(puk))
		}
		for _, r := range pin + puk {
			if r < '0' || r > '9' {
				t.Fatal("non-digit in PIN or PUK")
			}
		}
		seen[pin] = true
	}
	if len(seen) < 190 {
		t.Errorf("only %d distinct PINs in 200 draws", len(seen))
	}
	for _, w := range []string{"000000", "123456", "987654", "11111111", "23456789"} {
		if !weak(w) {
			t.Errorf("%s not considered weak", w)
		}
	}
}
