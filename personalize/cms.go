package personalize

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/smallstep/pkcs7"
)

// signer makes the CMS SignedData objects of the card with the content
// signing key (SP 800-73-4 part 1 §3.1.2, SP 800-78 for algorithms).
type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type pkcs7Attr struct {
	Type  asn1.ObjectIdentifier
	Value any
}

func (s signer) newSignedData(content []byte, contentType asn1.ObjectIdentifier, extra []pkcs7Attr) (*pkcs7.SignedData, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	// The content type must be set before AddSigner: it becomes the signed
	// content-type attribute.
	sd.GetSignedData().ContentInfo.ContentType = contentType
	attrs := []pkcs7.Attribute{{Type: oidPIVSignerDN, Value: asn1.RawValue{FullBytes: s.cert.RawSubject}}}
	for _, a := range extra {
		attrs = append(attrs, pkcs7.Attribute{Type: a.Type, Value: a.Value})
	}
	if err := sd.AddSigner(s.cert, s.key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, err
	}
	return sd, nil
}

// signDetached returns a SignedData over content without the content.
// includeCert puts the signer's certificate in it (the CHUID must carry it;
// the other objects refer to the CHUID's).
func (s signer) signDetached(content []byte, contentType asn1.ObjectIdentifier, includeCert bool, extra []pkcs7Attr) ([]byte, error) {
	sd, err := s.newSignedData(content, contentType, extra)
	if err != nil {
		return nil, err
	}
	sd.Detach()
	sd.GetSignedData().ContentInfo.ContentType = contentType
	der, err := finish(sd)
	if err != nil || includeCert {
		return der, err
	}
	return stripCertificates(der)
}

// signEmbedded returns a SignedData carrying content, without certificates.
func (s signer) signEmbedded(content []byte, contentType asn1.ObjectIdentifier) ([]byte, error) {
	sd, err := s.newSignedData(content, contentType, nil)
	if err != nil {
		return nil, err
	}
	der, err := finish(sd)
	if err != nil {
		return nil, err
	}
	return stripCertificates(der)
}

// finish marshals sd as version 3: RFC 5652 §5.1 requires it when the
// encapsulated content type is not id-data, which is always the case here.
func finish(sd *pkcs7.SignedData) ([]byte, error) {
	sd.GetSignedData().Version = 3
	return sd.Finish()
}

// stripCertificates removes the optional certificates [0] field from a
// ContentInfo{SignedData}: pkcs7 always writes the signer's certificate,
// SP 800-73-4 wants it only in the CHUID.
func stripCertificates(der []byte) ([]byte, error) {
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, err
	}
	var sd asn1.RawValue
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, err
	}
	var fields []asn1.RawValue
	for rest := sd.Bytes; len(rest) > 0; {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			return nil, err
		}
		if f.Class == asn1.ClassContextSpecific && f.Tag == 0 {
			continue
		}
		fields = append(fields, f)
	}
	var body []byte
	for _, f := range fields {
		body = append(body, f.FullBytes...)
	}
	inner, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		return nil, err
	}
	ci.Content = asn1.RawValue{FullBytes: nil, Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
	return asn1.Marshal(ci)
}

// verifyCMS checks a SignedData: the content type attribute, the signature
// (by the embedded certificate, or by signerCert when none is embedded),
// and the signer's chain to the CA at time t. For a detached signature,
// content is the signed data; it returns the signed content and the
// signer's certificate.
func verifyCMS(der, content []byte, wantType asn1.ObjectIdentifier, signerCert, ca *x509.Certificate, t time.Time) ([]byte, *x509.Certificate, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, nil, fmt.Errorf("not a CMS SignedData: %w", err)
	}
	if content != nil {
		p7.Content = content
	}
	if len(p7.Certificates) == 0 {
		if signerCert == nil {
			return nil, nil, errors.New("signature carries no certificate and no signer is known")
		}
		p7.Certificates = []*x509.Certificate{signerCert}
	}
	var ct asn1.ObjectIdentifier
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeContentType, &ct); err != nil {
		return nil, nil, fmt.Errorf("content type attribute: %w", err)
	}
	if !ct.Equal(wantType) {
		return nil, nil, fmt.Errorf("content type %v, want %v", ct, wantType)
	}
	if err := p7.Verify(); err != nil {
		return nil, nil, fmt.Errorf("signature: %w", err)
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return nil, nil, errors.New("signature must have exactly one signer")
	}
	if err := verifyChain(ca, cert, t); err != nil {
		return nil, nil, fmt.Errorf("signer %q: %w", cert.Subject, err)
	}
	return p7.Content, cert, nil
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
