package personalize

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"id06/internal/integration"
	"id06/personalize/apdu"
	"id06/personalize/emulator"
)

// The 9A and 9E certificates as an independent parser (openssl x509 -text)
// shows them: key identifiers, the configured policy, the CRL and CA URLs,
// the card UUID and each slot's key usages; and they chain to the CA.
func TestCertificateProfileOpenSSL(t *testing.T) {
	integration.Tool(t, "openssl", "openssl")
	ctx := context.Background()
	dir := t.TempDir()
	p, err := New(Config{PKIDir: dir, Issuer: "Test Issuer AB", Certs: CertProfile{
		PKIBaseURL: "https://pki.example.se/", AuthPolicy: "1.3.6.1.4.1.99999.1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, DefaultStock())
	f.p = p
	card := connect(t, emulator.NewReader("test", emulator.DefaultStock(), ""))
	if _, err := p.Personalize(ctx, card, f.data, Record{}); err != nil {
		t.Fatal(err)
	}
	s := &session{card: card, extended: true}
	if err := s.selectPIV(ctx); err != nil {
		t.Fatal(err)
	}
	common := []string{
		"X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier",
		"X509v3 Key Usage: critical", "Digital Signature",
		"X509v3 CRL Distribution Points", "URI:https://pki.example.se/pki/ca.crl",
		"CA Issuers - URI:https://pki.example.se/pki/ca.crt",
		"URI:urn:uuid:" + uuidString(f.data.CardUUID),
	}
	for _, tt := range []struct {
		obj  object
		want []string
		not  []string
	}{
		{objCert, []string{"Policy: 1.3.6.1.4.1.99999.1.1", "TLS Web Client Authentication", "Microsoft Smartcard Login", "PKINIT Client Auth", "Subject: serialNumber = BB-1234-567890,CN = " + f.data.HolderName}, []string{"2.16.840.1.101.3.6.8"}},
		{objCardAuthCert, []string{"Policy: " + DefaultCardAuthPolicy, "X509v3 Extended Key Usage: critical", "2.16.840.1.101.3.6.8", "Subject: serialNumber = " + uuidString(f.data.CardUUID) + ",OU = "}, []string{f.data.HolderName, "Client Authentication"}},
	} {
		t.Run(tt.obj.Name, func(t *testing.T) {
			c, err := s.getData(ctx, tt.obj.Tag)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := apdu.Unwrap(c, 0x53)
			cert, err := parseCertObject(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cert.AuthorityKeyId, p.pki.caCert.SubjectKeyId) {
				t.Errorf("authority key identifier % X, the CA's subject key identifier % X", cert.AuthorityKeyId, p.pki.caCert.SubjectKeyId)
			}
			path := filepath.Join(t.TempDir(), "cert.pem")
			if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("openssl", "x509", "-in", path, "-noout", "-text", "-nameopt", "RFC2253,space_eq,-esc_msb,utf8").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl x509: %v\n%s", err, out)
			}
			text := string(out)
			for _, w := range append(common, tt.want...) {
				if !strings.Contains(text, w) {
					t.Errorf("openssl x509 -text lacks %q", w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(text, w) {
					t.Errorf("openssl x509 -text shows %q", w)
				}
			}
			if t.Failed() {
				t.Log(text)
			}
			if out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, caCertFile), "-purpose", "any", path).CombinedOutput(); err != nil {
				t.Errorf("openssl verify: %v\n%s", err, out)
			}
		})
	}
}

func TestCertProfileRefusesBadSettings(t *testing.T) {
	for _, c := range []CertProfile{
		{},
		{PKIBaseURL: "pki.example.se"},
		{PKIBaseURL: "ftp://pki.example.se"},
		{PKIBaseURL: "http://pki.example.se", AuthPolicy: "not-an-oid"},
		{PKIBaseURL: "http://pki.example.se", CardAuthPolicy: "1"},
	} {
		if _, err := New(Config{PKIDir: t.TempDir(), Issuer: "Test Issuer AB", Certs: c}); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
