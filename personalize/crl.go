package personalize

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Reason is why a card's certificates are revoked: the reason codes of
// POST /v1/orders/{id}/revoke, plus the station's own for spoiled blanks.
type Reason string

const (
	ReasonLost       Reason = "lost"
	ReasonStolen     Reason = "stolen"
	ReasonDamaged    Reason = "damaged"
	ReasonHolderLeft Reason = "holder_left"
	ReasonSuperseded Reason = "superseded" // also a re-produced card's old certificates
	ReasonSpoiled    Reason = "spoiled"    // a blank spoiled after its certificates were issued
)

// Reasons lists the reasons a supplier or an operator may give.
func Reasons() []Reason {
	return []Reason{ReasonLost, ReasonStolen, ReasonDamaged, ReasonHolderLeft, ReasonSuperseded}
}

// crlCode is the RFC 5280 §5.3.1 CRLReason: a lost or stolen card's keys
// are out of the holder's control (keyCompromise); a holder who left
// changed affiliation; a damaged card or a spoiled blank is no longer used
// (cessationOfOperation).
func (r Reason) crlCode() (int, error) {
	switch r {
	case ReasonLost, ReasonStolen:
		return 1, nil
	case ReasonHolderLeft:
		return 3, nil
	case ReasonSuperseded:
		return 4, nil
	case ReasonDamaged, ReasonSpoiled:
		return 5, nil
	}
	return 0, fmt.Errorf("unknown revocation reason %q", r)
}

// Revoked is one revoked certificate.
type Revoked struct {
	Serial string // hex, as IssuedCert.Serial
	At     time.Time
	Reason Reason
}

// CRLValidity is how long a CRL stays current: the station issues a new
// one on every revocation and at least this often.
const CRLValidity = 24 * time.Hour

// IssueCRL signs a DER CRL (RFC 5280 v2, with the CRL number and the
// issuer's key identifier) listing revoked, valid from now for CRLValidity.
// number must grow with every CRL the CA issues.
func (p *Personalizer) IssueCRL(revoked []Revoked, number int64, now time.Time) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, r := range revoked {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("personalize: CRL: serial %q is not hex", r.Serial)
		}
		code, err := r.Reason.crlCode()
		if err != nil {
			return nil, fmt.Errorf("personalize: CRL: %w", err)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: r.At.UTC(), ReasonCode: code})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                now.UTC(),
		NextUpdate:                now.UTC().Add(CRLValidity),
		RevokedCertificateEntries: entries,
	}, p.pki.caCert, p.pki.caKey)
	if err != nil {
		return nil, fmt.Errorf("personalize: issue CRL: %w", err)
	}
	return der, nil
}

// canSignCRLs refuses a CA that could not sign the station's CRLs.
func canSignCRLs(ca *x509.Certificate) error {
	if len(ca.SubjectKeyId) == 0 {
		return errors.New("the CA certificate has no subject key identifier, which CRLs need")
	}
	if ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return errors.New("the CA certificate's key usage lacks cRLSign")
	}
	return nil
}

// CACertificateDER is the CA certificate as served at /pki/ca.crt.
func (p *Personalizer) CACertificateDER() []byte { return p.pki.caCert.Raw }

// CRL is a parsed CRL checked against its CA.
type CRL struct {
	list *x509.RevocationList
}

// ParseCRL parses a DER (or PEM) CRL and checks that ca signed it and that
// it is current at now.
func ParseCRL(der []byte, ca *x509.Certificate, now time.Time) (*CRL, error) {
	if b, ok := pemBlock(der, "X509 CRL"); ok {
		der = b
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	if err := l.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("CRL is not signed by the issuing CA %q: %w", ca.Subject, err)
	}
	if now.Before(l.ThisUpdate) {
		return nil, fmt.Errorf("CRL is from the future (this update %s)", l.ThisUpdate.Format(time.RFC3339))
	}
	if !l.NextUpdate.IsZero() && now.After(l.NextUpdate) {
		return nil, fmt.Errorf("CRL is out of date (next update was %s)", l.NextUpdate.Format(time.RFC3339))
	}
	return &CRL{l}, nil
}

// Revoked reports whether cert is on the CRL, and its reason code.
func (c *CRL) Revoked(cert *x509.Certificate) (bool, int) {
	i := slices.IndexFunc(c.list.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
		return e.SerialNumber.Cmp(cert.SerialNumber) == 0
	})
	if i < 0 {
		return false, 0
	}
	return true, c.list.RevokedCertificateEntries[i].ReasonCode
}

func pemBlock(b []byte, typ string) ([]byte, bool) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, false
	}
	return blk.Bytes, true
}

// MaxCRLSize bounds a fetched CRL: the station's are a few hundred bytes a
// revoked card.
const MaxCRLSize = 4 << 20

// FetchCRL downloads a CRL from an http(s) URL (a certificate's CRL
// distribution point) with a timeout, a size limit, and no redirect to
// another scheme.
func FetchCRL(ctx context.Context, rawURL string, timeout time.Duration) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("CRL URL %q is not http(s)", rawURL)
	}
	client := &http.Client{
		Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != u.Scheme {
				return fmt.Errorf("CRL %s redirects to another scheme (%s)", rawURL, req.URL.Scheme)
			}
			if len(via) >= 3 {
				return errors.New("CRL: too many redirects")
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch CRL: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch CRL %s: %s", rawURL, resp.Status)
	}
	if resp.ContentLength > MaxCRLSize { // refused before reading it
		return nil, fmt.Errorf("CRL at %s is larger than %d bytes", rawURL, MaxCRLSize)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxCRLSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch CRL %s: %w", rawURL, err)
	}
	if len(b) > MaxCRLSize {
		return nil, fmt.Errorf("CRL at %s is larger than %d bytes", rawURL, MaxCRLSize)
	}
	return b, nil
}
