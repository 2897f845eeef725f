package personalize

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// OIDs from FIPS 201 / SP 800-73-4 / RFC 4556 used in the certificates.
var (
	oidPIVContentSigning = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 7}
	oidSmartcardLogon    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}
	oidPKINITClientAuth  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 4}
)

// pki holds the issuing CA and the content-signing key that signs the CHUID,
// the facial image and the security object.
type pki struct {
	caCert     *x509.Certificate
	caKey      crypto.Signer
	signerCert *x509.Certificate
	signerKey  crypto.Signer
}

const (
	caCertFile     = "ca.pem"
	caKeyFile      = "ca-key.pem"
	signerCertFile = "content-signer.pem"
	signerKeyFile  = "content-signer-key.pem"
)

// loadPKI loads the configured CA (or the development CA in dir, creating it
// on first run) and a content-signing certificate issued by that CA.
func loadPKI(dir, caCertPath, caKeyPath, issuer string, now time.Time) (*pki, error) {
	if (caCertPath == "") != (caKeyPath == "") {
		return nil, errors.New("personalize: configure both CACert and CAKey, or neither")
	}
	if dir == "" {
		return nil, errors.New("personalize: Config.PKIDir is required (it holds the content-signing key)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("personalize: create PKI directory: %w", err)
	}
	p := &pki{}
	var err error
	if caCertPath != "" {
		p.caCert, p.caKey, err = loadCertKey(caCertPath, caKeyPath)
		if err != nil {
			return nil, fmt.Errorf("personalize: configured CA: %w", err)
		}
		if !p.caCert.IsCA {
			return nil, fmt.Errorf("personalize: configured CA certificate %s is not a CA (basicConstraints cA=false)", caCertPath)
		}
	} else {
		p.caCert, p.caKey, err = loadOrCreate(dir, caCertFile, caKeyFile, func() (*x509.Certificate, crypto.Signer, error) {
			return newDevCA(issuer, now)
		})
		if err != nil {
			return nil, err
		}
	}
	p.signerCert, p.signerKey, err = loadOrCreate(dir, signerCertFile, signerKeyFile, func() (*x509.Certificate, crypto.Signer, error) {
		return newContentSigner(p.caCert, p.caKey, issuer, now)
	})
	if err != nil {
		return nil, err
	}
	// A content signer left over from another CA would make every card fail
	// verification: reissue it.
	if p.signerCert.CheckSignatureFrom(p.caCert) != nil || now.After(p.signerCert.NotAfter) {
		p.signerCert, p.signerKey, err = newContentSigner(p.caCert, p.caKey, issuer, now)
		if err != nil {
			return nil, err
		}
		if err := writeCertKey(dir, signerCertFile, signerKeyFile, p.signerCert, p.signerKey); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func loadOrCreate(dir, certName, keyName string, create func() (*x509.Certificate, crypto.Signer, error)) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	_, errC := os.Stat(certPath)
	_, errK := os.Stat(keyPath)
	switch {
	case errC == nil && errK == nil:
		return loadCertKey(certPath, keyPath)
	case errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist):
		cert, key, err := create()
		if err != nil {
			return nil, nil, err
		}
		return cert, key, writeCertKey(dir, certName, keyName, cert, key)
	default:
		return nil, nil, fmt.Errorf("personalize: %s and %s must both exist or both be absent (delete the stray one to regenerate)", certPath, keyPath)
	}
}

func writeCertKey(dir, certName, keyName string, cert *x509.Certificate, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("personalize: encode key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, keyName), keyPEM, 0o600); err != nil {
		return fmt.Errorf("personalize: write key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(filepath.Join(dir, certName), certPEM, 0o644); err != nil {
		return fmt.Errorf("personalize: write certificate: %w", err)
	}
	return nil
}

func loadCertKey(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	key, err := parsePrivateKey(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not hold the private key of %s", keyPath, certPath)
	}
	return cert, key, nil
}

func parsePrivateKey(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ae, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ae.Equal(b)
}

func randomSerial() (*big.Int, error) {
	// 16 random bytes, top bit cleared so the DER INTEGER stays positive.
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// notBefore starts a CA or content-signer validity an hour before the
// earlier of the injected clock and the wall clock: pkcs7 stamps the
// wall-clock signing time and checks it against the signer's validity.
func notBefore(now time.Time) time.Time {
	if wall := time.Now(); wall.Before(now) {
		now = wall
	}
	return now.Add(-time.Hour)
}

func newDevCA(issuer string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: issuer + " ID06 Issuing CA (development)", Organization: []string{issuer}},
		NotBefore:             notBefore(now),
		NotAfter:              now.AddDate(20, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("personalize: create development CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newContentSigner(ca *x509.Certificate, caKey crypto.Signer, issuer string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.AddDate(10, 0, 0)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: issuer + " PIV Content Signer", Organization: []string{issuer}},
		NotBefore:          notBefore(now),
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidPIVContentSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("personalize: create content-signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// issuePIVAuth issues the PIV Authentication certificate for the key
// generated in slot 9A.
func (p *pki) issuePIVAuth(pub crypto.PublicKey, d CardData, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	u := uuidString(d.CardUUID)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   d.HolderName,
			Organization: []string{d.Company},
			SerialNumber: d.CardNumber,
		},
		NotBefore:          now.Add(-time.Minute),
		NotAfter:           d.ValidUntil,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidSmartcardLogon, oidPKINITClientAuth},
		// PIV-I binds the certificate to the card by the card UUID.
		URIs: []*url.URL{{Scheme: "urn", Opaque: "uuid:" + u}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, pub, p.caKey)
	if err != nil {
		return nil, fmt.Errorf("personalize: issue PIV Authentication certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// verifyChain checks cert against the CA at time t.
func (p *pki) verifyChain(cert *x509.Certificate, t time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(p.caCert)
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}
