package personalize

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// OIDs from FIPS 201 / SP 800-73-4 / RFC 4556 used in the certificates.
var (
	oidPIVContentSigning = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 7}
	oidPIVCardAuth       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 8}
	oidSmartcardLogon    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}
	oidPKINITClientAuth  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 4}
	oidExtKeyUsage       = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// pki holds the issuing CA and the content-signing key that signs the CHUID,
// the facial image and the security object; the keys stay in the key store.
type pki struct {
	caCert     *x509.Certificate
	caKey      crypto.Signer
	signerCert *x509.Certificate
	signerKey  crypto.Signer
	profile    CertProfile
}

const (
	caCertFile     = "ca.pem"
	caKeyFile      = "ca-key.pem"
	signerCertFile = "content-signer.pem"
	signerKeyFile  = "content-signer-key.pem"
)

// loadPKI loads the configured CA (or the development CA whose certificate
// is in dir, creating it on first run) and a content-signing certificate
// issued by that CA, with their keys from ks.
func loadPKI(ks KeyStore, dir, caCertPath, issuer string, now time.Time) (*pki, error) {
	if dir == "" {
		return nil, errors.New("personalize: Config.PKIDir is required (it holds the certificates)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("personalize: create PKI directory: %w", err)
	}
	p := &pki{}
	var err error
	if caCertPath != "" {
		if p.caCert, err = readCertFile(caCertPath); err != nil {
			return nil, fmt.Errorf("personalize: configured CA: %w", err)
		}
		if !p.caCert.IsCA {
			return nil, fmt.Errorf("personalize: configured CA certificate %s is not a CA (basicConstraints cA=false)", caCertPath)
		}
		if p.caKey, err = ks.Signer(KeyCA); err != nil {
			return nil, fmt.Errorf("personalize: the key of the configured CA %s: %w", caCertPath, err)
		}
		if !publicKeysEqual(p.caKey.Public(), p.caCert.PublicKey) {
			return nil, fmt.Errorf("personalize: %s does not hold the private key of %s", ks, caCertPath)
		}
	} else {
		p.caCert, p.caKey, err = loadOrCreate(ks, KeyCA, filepath.Join(dir, caCertFile), false, func(key crypto.Signer) (*x509.Certificate, error) {
			return newDevCA(key, issuer, now)
		})
		if err != nil {
			return nil, err
		}
	}
	if err := canSignCRLs(p.caCert); err != nil {
		return nil, fmt.Errorf("personalize: the station revokes cards with CRLs its CA signs, but %w", err)
	}
	issueSigner := func(key crypto.Signer) (*x509.Certificate, error) {
		return newContentSigner(p.caCert, p.caKey, key, issuer, now)
	}
	certPath := filepath.Join(dir, signerCertFile)
	if p.signerCert, p.signerKey, err = loadOrCreate(ks, KeyContentSigner, certPath, true, issueSigner); err != nil {
		return nil, err
	}
	// A content-signing certificate from another CA, or an expired one,
	// would make every card fail verification: reissue it for the same key.
	if p.signerCert.CheckSignatureFrom(p.caCert) != nil || now.After(p.signerCert.NotAfter) {
		if p.signerCert, err = issueSigner(p.signerKey); err != nil {
			return nil, err
		}
		if err := writeCertFile(certPath, p.signerCert); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// loadOrCreate returns the certificate in certPath and its key from ks,
// creating both on first run. A key without its certificate gets a new
// certificate only when reissue allows (the content signer); a certificate
// without its key is an error: something was lost that a new key cannot
// replace.
func loadOrCreate(ks KeyStore, name, certPath string, reissue bool, issue func(crypto.Signer) (*x509.Certificate, error)) (*x509.Certificate, crypto.Signer, error) {
	cert, errC := readCertFile(certPath)
	key, errK := ks.Signer(name)
	noCert, noKey := errors.Is(errC, os.ErrNotExist), errors.Is(errK, ErrNoKey)
	switch {
	case errC == nil && errK == nil:
		if !publicKeysEqual(key.Public(), cert.PublicKey) {
			return nil, nil, fmt.Errorf("personalize: the %s key in %s is not the key of %s", name, ks, certPath)
		}
		return cert, key, nil
	case noCert && noKey:
		if key, errK = ks.NewSigner(name); errK != nil {
			return nil, nil, fmt.Errorf("personalize: create the %s key in %s: %w", name, ks, errK)
		}
	case noCert && errK == nil && reissue:
	case noCert && errK == nil:
		return nil, nil, fmt.Errorf("personalize: %s is missing but its key is in %s: restore the certificate from the backup", certPath, ks)
	case errC == nil && noKey:
		return nil, nil, fmt.Errorf("personalize: the %s key for %s is missing from %s: restore it from the backup (or move the certificate away to start a new one)", name, certPath, ks)
	case errC != nil && !noCert:
		return nil, nil, fmt.Errorf("personalize: %w", errC)
	default:
		return nil, nil, fmt.Errorf("personalize: %s key: %w", name, errK)
	}
	if cert, errC = issue(key); errC != nil {
		return nil, nil, errC
	}
	return cert, key, writeCertFile(certPath, cert)
}

func writeCertFile(path string, cert *x509.Certificate) error {
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(path, certPEM, 0o644); err != nil {
		return fmt.Errorf("personalize: write certificate: %w", err)
	}
	return nil
}

// readCertFile reads a PEM certificate; a missing file wraps os.ErrNotExist.
func readCertFile(path string) (*x509.Certificate, error) {
	certPEM, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
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

func newDevCA(key crypto.Signer, issuer string, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("personalize: create development CA: %w", err)
	}
	return x509.ParseCertificate(der)
}

func newContentSigner(ca *x509.Certificate, caKey, key crypto.Signer, issuer string, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("personalize: create content-signing certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// verifyChain checks cert against the CA ca at time t.
func verifyChain(ca, cert *x509.Certificate, t time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}
