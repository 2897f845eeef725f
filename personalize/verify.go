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
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"id06/personalize/apdu"
)

// CheckStatus is the outcome of one check. A check that could not run is
// skipped, which is never a pass.
type CheckStatus string

const (
	Pass    CheckStatus = "pass"
	Fail    CheckStatus = "fail"
	Skipped CheckStatus = "skipped"
)

// Check is one verification step and its outcome.
type Check struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail,omitempty"`
}

// OK reports a passed check.
func (c Check) OK() bool { return c.Status == Pass }

// Outcome sums up a Report: pass (every check passed), fail (at least one
// failed) or incomplete (none failed, some could not run).
type Outcome string

const (
	ResultPass       Outcome = "pass"
	ResultFail       Outcome = "fail"
	ResultIncomplete Outcome = "incomplete"
)

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
	Result     Outcome `json:"result"`
	OK         bool    `json:"ok"` // Result is pass
}

func (r *Report) add(name string, err error) {
	c := Check{Name: name, Status: Pass}
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
	}
	r.Checks = append(r.Checks, c)
}

func (r *Report) skip(name, why string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: Skipped, Detail: why})
}

func (r *Report) with(status CheckStatus) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == status {
			out = append(out, c)
		}
	}
	return out
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Check { return r.with(Fail) }

// Skipped returns the checks that could not run.
func (r *Report) Skipped() []Check { return r.with(Skipped) }

func (r *Report) finish() {
	switch {
	case len(r.Checks) == 0 || len(r.Failed()) > 0:
		r.Result = ResultFail
	case len(r.Skipped()) > 0:
		r.Result = ResultIncomplete
	default:
		r.Result = ResultPass
	}
	r.OK = r.Result == ResultPass
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
	chuidOK      bool
	signer       *x509.Certificate // content signer, from the CHUID
}

// CRLSource returns the CRL (DER or PEM) that covers cert.
type CRLSource func(ctx context.Context, cert *x509.Certificate) ([]byte, error)

// CRLFromFile is a CRLSource reading one CRL file, once: a pipe (a shell's
// <(curl …)) would be empty for the second certificate.
func CRLFromFile(path string) CRLSource {
	read := sync.OnceValues(func() ([]byte, error) { return os.ReadFile(path) })
	return func(context.Context, *x509.Certificate) ([]byte, error) { return read() }
}

// CRLFromDistributionPoint is a CRLSource fetching the CRL named in the
// certificate's CRL distribution point.
func CRLFromDistributionPoint(timeout time.Duration) CRLSource {
	return func(ctx context.Context, cert *x509.Certificate) ([]byte, error) {
		if len(cert.CRLDistributionPoints) == 0 {
			return nil, errors.New("the certificate names no CRL distribution point")
		}
		return FetchCRL(ctx, cert.CRLDistributionPoints[0], timeout)
	}
}

// VerifyConfig sets up a Verifier: the QA checks of cards this or another
// station made. Only the CA certificate is required; nothing is created.
type VerifyConfig struct {
	CACert *x509.Certificate // the issuing CA
	Stock  StockProfile      // the transport key and limits; zero = DefaultStock()
	// Keys, when it holds the master management key, lets Verify check
	// that the card takes its per-card key; nil skips that check.
	Keys KeyStore
	CRL  CRLSource // nil skips the revocation check
	Now  func() time.Time
}

// Verifier runs the read-only QA checks of docs/design.md §6 step 6 on any card.
type Verifier struct {
	ca     *x509.Certificate
	stock  StockProfile
	master *masterKey
	crl    CRLSource
	now    func() time.Time
}

// NewVerifier makes a Verifier.
func NewVerifier(cfg VerifyConfig) (*Verifier, error) {
	if cfg.CACert == nil {
		return nil, errors.New("personalize: verify needs the issuing CA certificate")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stock.MgmtKey == nil {
		cfg.Stock = DefaultStock()
	}
	if err := cfg.Stock.validate(); err != nil {
		return nil, err
	}
	v := &Verifier{ca: cfg.CACert, stock: cfg.Stock, crl: cfg.CRL, now: cfg.Now}
	if cfg.Keys != nil {
		prf, err := cfg.Keys.HMAC(KeyMaster)
		switch {
		case errors.Is(err, ErrNoKey):
		case err != nil:
			return nil, fmt.Errorf("personalize: master management key: %w", err)
		default:
			v.master = &masterKey{prf}
		}
	}
	return v, nil
}

// Verifier returns the station's own Verifier (its CA, stock and master
// key) that checks revocation against crl (nil skips that check).
func (p *Personalizer) Verifier(crl CRLSource) *Verifier {
	return &Verifier{ca: p.pki.caCert, stock: p.stock, master: &p.master, crl: crl, now: p.now}
}

// Verify is p.Verifier(nil).Verify: revocation is not checked.
func (p *Personalizer) Verify(ctx context.Context, card apdu.Card, pin string) (*Report, error) {
	return p.Verifier(nil).Verify(ctx, card, pin)
}

// checkObjects checks structure, size, signatures, the certificate chains
// and the security object hashes of the objects read. Each object gets one
// check named after it, so a tampered object is named in the report.
func (v *Verifier) checkObjects(r *Report, objs map[uint][]byte, errs map[uint]error, now time.Time) profileFacts {
	var f profileFacts
	value := func(o object) ([]byte, error) {
		if err := errs[o.Tag]; err != nil {
			return nil, err
		}
		if err := v.stock.checkSize(o, objs[o.Tag]); err != nil {
			return nil, err
		}
		return apdu.Unwrap(objs[o.Tag], 0x53)
	}

	// Certificates.
	certCheck := func(o object, slot byte) (*x509.Certificate, error) {
		val, err := value(o)
		if err != nil {
			return nil, err
		}
		c, err := parseCertObject(val)
		if err != nil {
			return nil, err
		}
		return c, checkCardCert(v.ca, slot, c, now)
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
		val, err := value(objCHUID)
		if err != nil {
			return err
		}
		c, err := parseCHUID(val)
		if err != nil {
			return err
		}
		f.chuid, f.chuidOK = c, true
		r.CardUUID = uuidString(c.GUID)
		r.ValidUntil = c.Expiry.Format(time.DateOnly)
		if _, err := decodeFASCN(c.FASCN); err != nil {
			return err
		}
		if _, f.signer, err = verifyCMS(c.Signature, c.Signed, oidCHUIDSecurityObject, nil, v.ca, now); err != nil {
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
		val, err := value(objSecurity)
		if err != nil {
			return err
		}
		if so, err = parseSecurityObject(val); err != nil {
			return err
		}
		if f.signer == nil {
			return errors.New("cannot check the signature without a valid CHUID signer")
		}
		content, _, err := verifyCMS(so.CMS, nil, oidLDSSecurityObject, f.signer, v.ca, now)
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
			r.Checks[len(r.Checks)-1] = Check{Name: objCHUID.String(), Status: Fail, Detail: err.Error()}
		}
	}

	r.add(objCCC.String(), func() error {
		val, err := value(objCCC)
		if err != nil {
			return err
		}
		if err := checkCCC(val); err != nil {
			return err
		}
		return hashOK(objCCC)
	}())

	pinObject := func(o object, check func(val []byte) error) {
		if errors.Is(errs[o.Tag], errSkipped) {
			r.skip(o.String(), "needs the PIN")
			return
		}
		r.add(o.String(), func() error {
			val, err := value(o)
			if err != nil {
				return err
			}
			if err := check(val); err != nil {
				return err
			}
			return hashOK(o)
		}())
	}
	pinObject(objPrinted, func(val []byte) error {
		pi, err := parsePrintedInfo(val)
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
	pinObject(objFacial, func(val []byte) error {
		fi, err := parseFacial(val)
		if err != nil {
			return err
		}
		if chuidErr == nil && !bytes.Equal(fi.FASCN, f.chuid.FASCN) {
			return errors.New("CBEFF FASC-N differs from the CHUID's")
		}
		if f.signer == nil {
			return errors.New("cannot check the signature without a valid CHUID signer")
		}
		if _, _, err := verifyCMS(fi.Signature, fi.Signed, oidPIVBiometricObject, f.signer, v.ca, now); err != nil {
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
	checkDefaultKeys  = "management key: no well-known key"
	checkCardKey      = "management key: this station's per-card key"
	checkRevocation   = "revocation (CRL)"
)

// Verify runs the read-only QA checks on card. The PIN is optional:
// without it the Facial Image and Printed Information cannot be read and
// the 9A key cannot sign; those checks are skipped, as is any other check
// that cannot run (no CRL, no master key), and a skipped check is never a
// pass. An error is returned only when the card cannot be talked to at
// all.
func (v *Verifier) Verify(ctx context.Context, card apdu.Card, pin string) (*Report, error) {
	now := v.now()
	r := &Report{}
	uid, err := ReadUID(ctx, card)
	if err != nil {
		return nil, err
	}
	r.UID = hex.EncodeToString(uid)
	r.add(checkUID, nil)
	s := &session{card: card, extended: v.stock.ExtendedLength}
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
	f := v.checkObjects(r, objs, errs, now)
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
			r.add(checkKey, nil)
			r.Checks[len(r.Checks)-1].Detail = "public key in slot 9A matches the certificate (PIN not given: no signature made)"
		}
	}
	v.checkRevocation(ctx, r, f, now)
	// Management key attempts come last: they leave the card's security
	// status as the last attempt set it.
	if err := v.checkMgmtKeys(ctx, r, s, f); err != nil {
		return nil, err
	}
	r.finish()
	return r, nil
}

// checkRevocation looks both certificates up on the CRL.
func (v *Verifier) checkRevocation(ctx context.Context, r *Report, f profileFacts, now time.Time) {
	if f.cert == nil && f.cardAuthCert == nil {
		r.add(checkRevocation, errors.New("no certificate to check"))
		return
	}
	if v.crl == nil {
		r.skip(checkRevocation, "no CRL: give one (--crl FILE) or let verify fetch it from the certificate's CRL distribution point")
		return
	}
	var revoked []string
	for _, c := range []*x509.Certificate{f.cert, f.cardAuthCert} {
		if c == nil {
			continue
		}
		der, err := v.crl(ctx, c)
		if err != nil {
			r.skip(checkRevocation, "no CRL: "+err.Error())
			return
		}
		crl, err := ParseCRL(der, v.ca, now)
		if err != nil {
			r.skip(checkRevocation, err.Error())
			return
		}
		if ok, reason := crl.Revoked(c); ok {
			revoked = append(revoked, fmt.Sprintf("certificate %s is revoked (reason %d)", serialHex(c), reason))
		}
	}
	if len(revoked) > 0 {
		r.add(checkRevocation, errors.New(strings.Join(revoked, "; ")))
		return
	}
	r.add(checkRevocation, nil)
}

// checkMgmtKeys fails a card that answers to its stock's transport key or
// any well-known key, and checks the per-card key when the master key is
// at hand.
func (v *Verifier) checkMgmtKeys(ctx context.Context, r *Report, s *session, f profileFacts) error {
	keys := append([]mgmtKey{{v.stock.MgmtAlg, v.stock.MgmtKey}}, wellKnownKeys()...)
	var taken []string
	for _, k := range keys {
		ok, err := s.accepts(ctx, k)
		if err != nil {
			return fmt.Errorf("personalize: %w", err)
		}
		if ok {
			taken = append(taken, fmt.Sprintf("%s %X", algName(k.Alg), k.Key))
		}
	}
	if len(taken) > 0 {
		r.add(checkDefaultKeys, fmt.Errorf("the card takes the well-known management key %s: anyone can rewrite it", strings.Join(taken, ", ")))
	} else {
		r.add(checkDefaultKeys, nil)
	}
	switch {
	case v.master == nil:
		r.skip(checkCardKey, "no master management key: run verify with the data directory or configuration of the station that made the card")
	case !f.chuidOK:
		r.add(checkCardKey, errors.New("no readable CHUID to derive the key from"))
	default:
		alg := v.stock.cardMgmtAlg()
		key, err := v.master.cardKey(f.chuid.GUID, alg)
		if err != nil {
			return fmt.Errorf("personalize: %w", err)
		}
		ok, err := s.accepts(ctx, mgmtKey{alg, key})
		switch {
		case err != nil:
			return fmt.Errorf("personalize: %w", err)
		case !ok:
			r.add(checkCardKey, fmt.Errorf("the card does not take the %s key this station's master key gives it: made by another station, or re-keyed", algName(alg)))
		default:
			r.add(checkCardKey, nil)
		}
	}
	return nil
}
