package personalize

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"id06/personalize/apdu"
)

// Check is one verification step and its outcome.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of Verify.
type Report struct {
	UID        string  `json:"uid"`
	CardNumber string  `json:"card_number"`
	Holder     string  `json:"holder"`
	Company    string  `json:"company"`
	ValidUntil string  `json:"valid_until"`
	CardUUID   string  `json:"card_uuid"`
	CertSerial string  `json:"cert_serial"`
	Checks     []Check `json:"checks"`
	OK         bool    `json:"ok"`
}

func (r *Report) add(name string, err error) {
	c := Check{Name: name, OK: err == nil}
	if err != nil {
		c.Detail = err.Error()
	}
	r.Checks = append(r.Checks, c)
}

func (r *Report) skip(name, why string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: true, Detail: "skipped: " + why})
}

// Failed returns the checks that did not pass.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func (r *Report) finish() {
	r.OK = len(r.Checks) > 0 && len(r.Failed()) == 0
}

// errSkipped marks an object that was deliberately not read.
var errSkipped = errors.New("not read")

// readObjects reads every profile object, returning containers by tag; an
// object that is absent is reported through missing.
func (s *session) readObjects(ctx context.Context, withPIN bool) (map[uint][]byte, map[uint]error, error) {
	got := map[uint][]byte{}
	errs := map[uint]error{}
	for _, o := range written {
		if o.NeedsPIN && !withPIN {
			errs[o.Tag] = errSkipped
			continue
		}
		b, err := s.getData(ctx, o.Tag)
		var se *apdu.StatusError
		switch {
		case err == nil:
			got[o.Tag] = b
		case errors.As(err, &se):
			errs[o.Tag] = err
		default:
			// Transport failure: nothing more can be read.
			return nil, nil, fmt.Errorf("read %s: %w", o, err)
		}
	}
	return got, errs, nil
}

// profileFacts are the values the objects agree on, for the report.
type profileFacts struct {
	cert         *x509.Certificate // PIV Authentication (9A)
	cardAuthCert *x509.Certificate // Card Authentication (9E)
	chuid        chuid
	signer       *x509.Certificate // content signer, from the CHUID
}

// checkObjects checks structure, signatures, the certificate chain and the
// security object hashes of the objects read. Each object gets one check
// named after it, so a tampered object is named in the report.
func (p *Personalizer) checkObjects(r *Report, objs map[uint][]byte, errs map[uint]error, now time.Time) profileFacts {
	var f profileFacts
	value := func(o object) ([]byte, error) {
		if err := errs[o.Tag]; err != nil {
			return nil, err
		}
		v, err := apdu.Unwrap(objs[o.Tag], 0x53)
		if err != nil {
			return nil, fmt.Errorf("not a 53 container: %w", err)
		}
		return v, nil
	}

	// Certificates.
	certCheck := func(o object, slot byte) (*x509.Certificate, error) {
		v, err := value(o)
		if err != nil {
			return nil, err
		}
		c, err := parseCertObject(v)
		if err != nil {
			return nil, err
		}
		return c, checkCardCert(p.pki.caCert, slot, c, now)
	}
	var certErr, cardAuthErr error
	f.cert, certErr = certCheck(objCert, slotPIVAuth)
	f.cardAuthCert, cardAuthErr = certCheck(objCardAuthCert, slotCardAuth)
	if f.cert != nil {
		r.Holder = f.cert.Subject.CommonName
		if len(f.cert.Subject.Organization) > 0 {
			r.Company = f.cert.Subject.Organization[0]
		}
		r.CardNumber = f.cert.Subject.SerialNumber
		r.CertSerial = serialHex(f.cert)
	}
	r.add(objCert.String(), certErr)
	r.add(objCardAuthCert.String(), cardAuthErr)

	// CHUID.
	chuidErr := func() error {
		v, err := value(objCHUID)
		if err != nil {
			return err
		}
		c, err := parseCHUID(v)
		if err != nil {
			return err
		}
		f.chuid = c
		r.CardUUID = uuidString(c.GUID)
		r.ValidUntil = c.Expiry.Format(time.DateOnly)
		if _, err := decodeFASCN(c.FASCN); err != nil {
			return err
		}
		if _, f.signer, err = verifyCMS(c.Signature, c.Signed, oidCHUIDSecurityObject, nil, p.pki, now); err != nil {
			return fmt.Errorf("issuer signature: %w", err)
		}
		if !slices.ContainsFunc(f.signer.UnknownExtKeyUsage, oidPIVContentSigning.Equal) {
			return errors.New("issuer signature: signer is not a PIV content signer")
		}
		if now.After(c.Expiry.AddDate(0, 0, 1)) {
			return fmt.Errorf("card expired on %s", r.ValidUntil)
		}
		urn := "urn:uuid:" + uuidString(c.GUID)
		for _, cert := range []*x509.Certificate{f.cert, f.cardAuthCert} {
			if cert != nil && (len(cert.URIs) != 1 || cert.URIs[0].String() != urn) {
				return fmt.Errorf("GUID %s does not match the certificate's %v", uuidString(c.GUID), cert.URIs)
			}
		}
		return nil
	}()
	r.add(objCHUID.String(), chuidErr)

	// Security object: its signature first, then the hashes of the others.
	var so securityObject
	soErr := func() error {
		v, err := value(objSecurity)
		if err != nil {
			return err
		}
		if so, err = parseSecurityObject(v); err != nil {
			return err
		}
		if f.signer == nil {
			return errors.New("cannot check the signature without a valid CHUID signer")
		}
		content, _, err := verifyCMS(so.CMS, nil, oidLDSSecurityObject, f.signer, p.pki, now)
		if err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		return so.fillHashes(content)
	}()
	if soErr != nil {
		so.Hashes = nil
	}
	hashOK := func(o object) error {
		if so.Hashes == nil {
			return errors.New("no valid security object to check the hash against")
		}
		want, ok := so.Hashes[o.ContainerID]
		if !ok {
			return errors.New("not covered by the security object")
		}
		if !bytes.Equal(want, sha256Sum(objs[o.Tag])) {
			return errors.New("hash does not match the security object")
		}
		return nil
	}
	// The CHUID is covered too: a CHUID validly signed but swapped in from
	// another card must fail.
	if chuidErr == nil {
		if err := hashOK(objCHUID); err != nil {
			r.Checks[len(r.Checks)-1] = Check{Name: objCHUID.String(), Detail: err.Error()}
		}
	}

	r.add(objCCC.String(), func() error {
		v, err := value(objCCC)
		if err != nil {
			return err
		}
		if err := checkCCC(v); err != nil {
			return err
		}
		return hashOK(objCCC)
	}())

	pinObject := func(o object, check func(v []byte) error) {
		if errors.Is(errs[o.Tag], errSkipped) {
			r.skip(o.String(), "needs the PIN")
			return
		}
		r.add(o.String(), func() error {
			v, err := value(o)
			if err != nil {
				return err
			}
			if err := check(v); err != nil {
				return err
			}
			return hashOK(o)
		}())
	}
	pinObject(objPrinted, func(v []byte) error {
		pi, err := parsePrintedInfo(v)
		if err != nil {
			return err
		}
		if f.cert != nil && pi.CardNumber != asciiField(f.cert.Subject.SerialNumber, 20) {
			return fmt.Errorf("card number %q differs from the certificate's %q", pi.CardNumber, f.cert.Subject.SerialNumber)
		}
		if chuidErr == nil && pi.Expiry != strings.ToUpper(f.chuid.Expiry.Format("2006Jan02")) {
			return fmt.Errorf("expiry %s differs from the CHUID's %s", pi.Expiry, r.ValidUntil)
		}
		return nil
	})
	pinObject(objFacial, func(v []byte) error {
		fi, err := parseFacial(v)
		if err != nil {
			return err
		}
		if chuidErr == nil && !bytes.Equal(fi.FASCN, f.chuid.FASCN) {
			return errors.New("CBEFF FASC-N differs from the CHUID's")
		}
		if f.signer == nil {
			return errors.New("cannot check the signature without a valid CHUID signer")
		}
		if _, _, err := verifyCMS(fi.Signature, fi.Signed, oidPIVBiometricObject, f.signer, p.pki, now); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		return nil
	})
	r.add(objSecurity.String(), soErr)
	return f
}

// proveKey signs a fresh random challenge with the key in slot and checks
// the signature with the certificate's public key. Slot 9A needs the PIN
// verified; 9E never does.
func (s *session) proveKey(ctx context.Context, slot byte, cert *x509.Certificate) error {
	if cert == nil {
		return errors.New("no valid certificate to check against")
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("certificate key is %T, not ECDSA", cert.PublicKey)
	}
	challenge := make([]byte, 32)
	if _, err := rand.Read(challenge); err != nil {
		return err
	}
	digest := sha256Sum(challenge)
	sig, err := s.signP256(ctx, slot, digest)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(pub, digest, sig) {
		return fmt.Errorf("the signature by slot %02X does not verify with the certificate's key", slot)
	}
	return nil
}

const (
	checkUID          = "chip UID"
	checkPIN          = "PIN"
	checkKey          = "key 9A (sign a challenge)"
	checkCardAuthKey  = "key 9E (sign a challenge, no PIN)"
	checkTransportKey = "management key: transport key refused"
)

// Verify runs the read-only QA checks of DESIGN §6 step 6 on any card. The
// PIN is optional: without it the Facial Image and Printed Information
// cannot be read and the key cannot be exercised; those checks are
// reported as skipped. An error is returned only when the card cannot be
// talked to at all.
func (p *Personalizer) Verify(ctx context.Context, card apdu.Card, pin string) (*Report, error) {
	now := p.now()
	r := &Report{}
	uid, err := ReadUID(ctx, card)
	if err != nil {
		return nil, err
	}
	r.UID = hex.EncodeToString(uid)
	r.add(checkUID, nil)
	s := &session{card: card, extended: p.stock.ExtendedLength}
	if err := s.selectPIV(ctx); err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	withPIN := false
	if pin != "" {
		err := s.verifyPIN(ctx, pin)
		r.add(checkPIN, err)
		withPIN = err == nil
	}
	objs, errs, err := s.readObjects(ctx, withPIN)
	if err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	f := p.checkObjects(r, objs, errs, now)
	r.add(checkCardAuthKey, s.proveKey(ctx, slotCardAuth, f.cardAuthCert))
	switch {
	case withPIN:
		r.add(checkKey, s.proveKey(ctx, slotPIVAuth, f.cert))
	case f.cert == nil:
		r.add(checkKey, errors.New("no valid certificate to check against"))
	default:
		// Without the PIN the key cannot sign; cards with the YubiKey
		// metadata extension still show which public key the slot holds.
		pub, err := s.slotPublicKey(ctx, slotPIVAuth)
		var se *apdu.StatusError
		switch {
		case errors.As(err, &se):
			r.skip(checkKey, "needs the PIN (the card does not report key metadata)")
		case err != nil:
			r.add(checkKey, err)
		case !pub.Equal(f.cert.PublicKey):
			r.add(checkKey, errors.New("slot 9A holds a key other than the certificate's"))
		default:
			r.Checks = append(r.Checks, Check{Name: checkKey, OK: true, Detail: "public key in slot 9A matches the certificate (PIN not given: no signature made)"})
		}
	}
	r.finish()
	return r, nil
}
