package personalize

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// CertProfile is what the card certificates carry besides keys and names,
// after the PIV/PIV-I certificate profile: the certificate policies and
// where relying parties find the CA certificate and its CRL.
type CertProfile struct {
	// PKIBaseURL is where the station publishes its PKI: certificates
	// point to PKIBaseURL/pki/ca.crl (CRL distribution point) and
	// PKIBaseURL/pki/ca.crt (AIA caIssuers).
	PKIBaseURL string
	// AuthPolicy and CardAuthPolicy are the certificatePolicies OIDs of the
	// PIV Authentication (9A) and Card Authentication (9E) certificates;
	// "" = DefaultAuthPolicy / DefaultCardAuthPolicy.
	AuthPolicy, CardAuthPolicy string
}

// The default policy OIDs sit under 2.999, the arc ITU-T X.660 and ISO/IEC
// 9834-1 reserve for examples: they mark the certificates as issued under
// no real policy. A supplier sets its own (e.g. under its IANA private
// enterprise number) in cert_policy_oid and card_auth_policy_oid.
const (
	DefaultAuthPolicy     = "2.999.1.1"
	DefaultCardAuthPolicy = "2.999.1.2"
)

// CRLPath and CACertPath are where the station serves its CRL and CA
// certificate, below CertProfile.PKIBaseURL.
const (
	CRLPath    = "/pki/ca.crl"
	CACertPath = "/pki/ca.crt"
)

func (c CertProfile) withDefaults() (CertProfile, error) {
	if c.AuthPolicy == "" {
		c.AuthPolicy = DefaultAuthPolicy
	}
	if c.CardAuthPolicy == "" {
		c.CardAuthPolicy = DefaultCardAuthPolicy
	}
	for _, p := range []string{c.AuthPolicy, c.CardAuthPolicy} {
		if _, err := x509.ParseOID(p); err != nil {
			return c, fmt.Errorf("personalize: certificate policy %q is not an OID (e.g. 1.3.6.1.4.1.99999.1.1): %w", p, err)
		}
	}
	u, err := url.Parse(c.PKIBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return c, fmt.Errorf("personalize: PKI base URL %q must be an http(s) URL like http://pki.example.se (certificates name its /pki/ca.crl and /pki/ca.crt)", c.PKIBaseURL)
	}
	c.PKIBaseURL = strings.TrimRight(c.PKIBaseURL, "/")
	return c, nil
}

func (c CertProfile) crlURL() string    { return c.PKIBaseURL + CRLPath }
func (c CertProfile) caCertURL() string { return c.PKIBaseURL + CACertPath }

// keyID is the RFC 5280 §4.2.1.2 method 1 key identifier: SHA-1 of the
// subjectPublicKey bits.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	h := sha1.Sum(spki.Key.Bytes)
	return h[:], nil
}

// issueCardCert issues the certificate for the key generated in slot 9A
// (PIV Authentication) or 9E (Card Authentication).
func (p *pki) issueCardCert(slot byte, pub crypto.PublicKey, d CardData, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := keyID(pub)
	if err != nil {
		return nil, err
	}
	u := uuidString(d.CardUUID)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     d.ValidUntil,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// The card UUID binds the certificate to the card (PIV-I).
		URIs:                  []*url.URL{{Scheme: "urn", Opaque: "uuid:" + u}},
		SubjectKeyId:          ski,
		CRLDistributionPoints: []string{p.profile.crlURL()},
		IssuingCertificateURL: []string{p.profile.caCertURL()},
	}
	// Go copies the CA's subject key identifier into the authority key
	// identifier; a configured CA without one gets it computed.
	if len(p.caCert.SubjectKeyId) == 0 {
		if tmpl.AuthorityKeyId, err = keyID(p.caCert.PublicKey); err != nil {
			return nil, err
		}
	}
	var policy string
	switch slot {
	case slotPIVAuth:
		policy = p.profile.AuthPolicy
		tmpl.Subject = pkix.Name{CommonName: d.HolderName, Organization: []string{d.Company}, SerialNumber: d.CardNumber}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidSmartcardLogon, oidPKINITClientAuth}
	case slotCardAuth:
		// Read without a PIN at every door: no holder name, as PIV-I's
		// card authentication profile has it, and the one EKU, critical.
		policy = p.profile.CardAuthPolicy
		tmpl.Subject = pkix.Name{SerialNumber: u, OrganizationalUnit: []string{d.Company}}
		eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidPIVCardAuth})
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}}
	default:
		return nil, fmt.Errorf("personalize: no certificate profile for slot %02X", slot)
	}
	oid, err := x509.ParseOID(policy)
	if err != nil {
		return nil, err
	}
	tmpl.Policies = []x509.OID{oid}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, pub, p.caKey)
	if err != nil {
		return nil, fmt.Errorf("personalize: issue the slot %02X certificate: %w", slot, err)
	}
	return x509.ParseCertificate(der)
}

// checkCardCert checks a card certificate read from the card against the
// CA and the profile: chain at time now, key usage, the slot's EKU, key
// identifiers, policy, CRL and CA URLs.
func checkCardCert(ca *x509.Certificate, slot byte, cert *x509.Certificate, now time.Time) error {
	if err := verifyChain(ca, cert, now); err != nil {
		return fmt.Errorf("chain to the issuing CA: %w", err)
	}
	var problems []string
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		problems = append(problems, "key usage lacks digitalSignature")
	}
	switch slot {
	case slotPIVAuth:
		if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			problems = append(problems, "extended key usage lacks clientAuth")
		}
	case slotCardAuth:
		if !slices.ContainsFunc(cert.UnknownExtKeyUsage, oidPIVCardAuth.Equal) {
			problems = append(problems, "extended key usage lacks id-PIV-cardAuth")
		}
	}
	if len(cert.SubjectKeyId) == 0 {
		problems = append(problems, "no subject key identifier")
	}
	if len(cert.AuthorityKeyId) == 0 {
		problems = append(problems, "no authority key identifier")
	}
	if len(cert.Policies) == 0 {
		problems = append(problems, "no certificate policy")
	}
	if len(cert.CRLDistributionPoints) == 0 {
		problems = append(problems, "no CRL distribution point")
	}
	if len(cert.IssuingCertificateURL) == 0 {
		problems = append(problems, "no AIA caIssuers URL")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
