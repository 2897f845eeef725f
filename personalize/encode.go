package personalize

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"id06/personalize/apdu"
)

// Personalize runs docs/design.md §6 steps 1–6 on card. rec.UID is called with
// the chip UID before the first write to the chip; if it returns an error
// nothing is written. rec.Cert is called with each certificate before it is
// written; an error stops before the write. A card that is not blank is refused with ErrNotBlank
// unless its UID equals d.ExpectedUID (resume after a crash: the profile is
// written again over it, or an error wrapping ErrSpoiled is returned when
// that is impossible). Verification failure returns an error wrapping
// ErrSpoiled that names the failed check.
func (p *Personalizer) Personalize(ctx context.Context, card apdu.Card, d CardData, rec Record) (*Result, error) {
	now := p.now()
	if err := d.validate(now); err != nil {
		return nil, err
	}
	// Everything that needs no card is built before talking to it, so a
	// bad photo or a signing failure never touches a blank.
	containers, err := p.buildObjects(d, now)
	if err != nil {
		return nil, err
	}
	pin, puk, err := newSecrets(p.stock)
	if err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	sealed, err := seal(p.sealTo, cardSecrets{CardNumber: d.CardNumber, PIN: pin, PUK: puk})
	if err != nil {
		return nil, fmt.Errorf("personalize: seal PIN and PUK: %w", err)
	}

	cc := apdu.Count(card)
	s := &session{card: cc, extended: p.stock.ExtendedLength}

	// Step 1–2: identify the chip and make sure we may write it.
	uid, err := ReadUID(ctx, cc)
	if err != nil {
		return nil, err
	}
	if err := s.selectPIV(ctx); err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	// The order's own chip, seen before (a resume after a crash): it may
	// already have its per-card management key, and its CHUID.
	sameChip := d.ExpectedUID != nil && bytes.Equal(uid, d.ExpectedUID)
	resume := false
	switch _, err := s.getData(ctx, objCHUID.Tag); {
	case errors.Is(err, apdu.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("personalize: check the card is blank: %w", err)
	case sameChip:
		resume = true
	default:
		return nil, fmt.Errorf("personalize: chip %s already carries a CHUID: %w", hex.EncodeToString(uid), ErrNotBlank)
	}
	spoiledIfResume := func(err error) error {
		if resume {
			return fmt.Errorf("%w: resuming chip %s: %w", ErrSpoiled, hex.EncodeToString(uid), err)
		}
		return err
	}
	cardKey, err := p.cardKey(d.CardUUID)
	if err != nil {
		return nil, err
	}
	transport := mgmtKey{p.stock.MgmtAlg, p.stock.MgmtKey}
	keyChanged := false
	if err := s.authenticate(ctx, transport.Alg, transport.Key); err != nil {
		// A run interrupted after the key change left the card with its
		// per-card key: try that before giving up.
		if !sameChip {
			return nil, fmt.Errorf("personalize: %w (is the stock profile's transport key right?)", err)
		}
		if err2 := s.authenticate(ctx, cardKey.Alg, cardKey.Key); err2 != nil {
			return nil, spoiledIfResume(fmt.Errorf("personalize: the chip takes neither the transport key (%w) nor its per-card key (%w)", err, err2))
		}
		keyChanged = true
	}
	if resume {
		// If the crashed run got as far as setting the PIN, its value is
		// lost with the run: find out before rewriting anything.
		if err := s.verifyPIN(ctx, p.stock.PIN); err != nil {
			return nil, spoiledIfResume(fmt.Errorf("personalize: the transport PIN no longer opens the card: %w", err))
		}
	}

	if rec.UID != nil {
		if err := rec.UID(uid); err != nil {
			return nil, fmt.Errorf("personalize: record chip UID: %w", err)
		}
	}

	// Step 2b: the transport key never stays on the card. It is replaced
	// before anything else is written, so a card lost from here on is
	// already closed to whoever knows the stock's key.
	if !keyChanged {
		if err := s.setManagementKey(ctx, cardKey); err != nil {
			return nil, writeErr(fmt.Errorf("%w (does the stock take %s keys? set its profile's per-card algorithm)", err, algName(cardKey.Alg)))
		}
		if err := s.authenticate(ctx, cardKey.Alg, cardKey.Key); err != nil {
			return nil, writeErr(fmt.Errorf("authenticate with the per-card management key just set: %w", err))
		}
	}

	// Step 3: keys generated on the card — PIV Authentication (9A, PIN
	// once) and Card Authentication (9E, no PIN: the slot's own access
	// rule) — and their certificates.
	certs := map[byte]*x509.Certificate{}
	var issued []IssuedCert
	for _, k := range []struct {
		slot byte
		obj  object
	}{{slotPIVAuth, objCert}, {slotCardAuth, objCardAuthCert}} {
		pub, err := s.generateP256(ctx, k.slot)
		if err != nil {
			return nil, writeErr(err)
		}
		c, err := p.pki.issueCardCert(k.slot, pub, d, now)
		if err != nil {
			return nil, err
		}
		certs[k.slot] = c
		containers[k.obj.Tag] = container(buildCertObject(c))
		if err := p.stock.checkSize(k.obj, containers[k.obj.Tag]); err != nil {
			return nil, fmt.Errorf("personalize: %w", err)
		}
		ic := IssuedCert{Slot: fmt.Sprintf("%02x", k.slot), Serial: serialHex(c), NotAfter: c.NotAfter}
		if rec.Cert != nil {
			if err := rec.Cert(ic); err != nil {
				return nil, fmt.Errorf("personalize: record certificate %s: %w", ic.Serial, err)
			}
		}
		issued = append(issued, ic)
	}
	cert := certs[slotPIVAuth]

	// Step 4: data objects, security object last.
	for _, o := range written {
		if err := s.putData(ctx, o.Tag, containers[o.Tag]); err != nil {
			return nil, writeErr(fmt.Errorf("write %s: %w", o, err))
		}
	}

	// Step 6 (before 5): verify what the card now holds while the transport
	// PIN still opens it. Setting the PIN comes last, so that a crash
	// anywhere before it leaves a chip the next run can still resume.
	r := &Report{}
	if err := s.verifyPIN(ctx, p.stock.PIN); err != nil {
		return nil, spoiled(checkPIN, err)
	}
	objs, errs, err := s.readObjects(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("personalize: verify: %w", err)
	}
	for _, o := range written {
		if errs[o.Tag] == nil && !bytes.Equal(objs[o.Tag], containers[o.Tag]) {
			return nil, spoiled(o.String(), errors.New("read back differs from what was written"))
		}
	}
	p.Verifier(nil).checkObjects(r, objs, errs, now)
	r.add(checkKey, s.proveKey(ctx, slotPIVAuth, cert))
	r.add(checkCardAuthKey, s.proveKey(ctx, slotCardAuth, certs[slotCardAuth]))
	r.add(checkTransportKey, s.refuses(ctx, transport, "the stock's transport key"))
	uid2, err := ReadUID(ctx, cc)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(uid, uid2) {
		r.add(checkUID, fmt.Errorf("chip UID changed from %X to %X", uid, uid2))
	}
	if failed := r.Failed(); len(failed) > 0 {
		var names []string
		for _, c := range failed {
			names = append(names, c.Name+": "+c.Detail)
		}
		return nil, fmt.Errorf("personalize: verify: %w: %s", ErrSpoiled, strings.Join(names, "; "))
	}

	// Step 5: PIN and PUK, then proof that the new PIN opens the card.
	if err := s.changeReference(ctx, keyPIN, p.stock.PIN, pin); err != nil {
		return nil, writeErr(fmt.Errorf("set PIN: %w", err))
	}
	if err := s.changeReference(ctx, keyPUK, p.stock.PUK, puk); err != nil {
		return nil, writeErr(fmt.Errorf("set PUK: %w", err))
	}
	if err := s.verifyPIN(ctx, pin); err != nil {
		return nil, spoiled(checkPIN, err)
	}
	return &Result{
		UID:           uid,
		CertSerial:    serialHex(cert),
		Certs:         issued,
		SealedSecrets: sealed,
		APDUs:         int(cc.APDUs()),
	}, nil
}

// buildObjects builds and signs every container except the certificate
// (which needs the key generated on the card), keyed by tag.
func (p *Personalizer) buildObjects(d CardData, now time.Time) (map[uint][]byte, error) {
	sign := signer{p.pki.signerCert, p.pki.signerKey}
	fasc, err := newFASCN(d.CardNumber)
	if err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	fascBytes, err := fasc.encode()
	if err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	containers := map[uint][]byte{}
	chuidV, err := buildCHUID(sign, fascBytes, d.CardUUID, d.ValidUntil)
	if err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	containers[objCHUID.Tag] = container(chuidV)
	containers[objCCC.Tag] = container(buildCCC(d.CardUUID))
	containers[objPrinted.Tag] = container(newPrintedInfo(d, p.issuer).encode())
	facialV, err := p.buildFacialToFit(sign, d, fascBytes, now)
	if err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	containers[objFacial.Tag] = container(facialV)
	soV, err := buildSecurityObject(sign, containers)
	if err != nil {
		return nil, fmt.Errorf("personalize: %w", err)
	}
	containers[objSecurity.Tag] = container(soV)
	for _, o := range written {
		// The certificates are checked once issued.
		if c, ok := containers[o.Tag]; ok {
			if err := p.stock.checkSize(o, c); err != nil {
				return nil, fmt.Errorf("personalize: %w: %w", err, ErrCardData)
			}
		}
	}
	return containers, nil
}

// buildFacialToFit builds the Facial Image, recompressing the portrait when
// the object would exceed SP 800-73-4's maximum or the stock's limit.
func (p *Personalizer) buildFacialToFit(sign signer, d CardData, fasc []byte, now time.Time) ([]byte, error) {
	v, err := buildFacial(sign, d.FacialJPEG, fasc, d.CardUUID, now, d.ValidUntil)
	if err != nil {
		return nil, err
	}
	over := p.stock.excess(objFacial, container(v))
	if over == 0 {
		return v, nil
	}
	// The signature's DER length varies by a byte or two between runs.
	const slack = 4
	jpg, err := compressPortrait(d.FacialJPEG, len(d.FacialJPEG)-over-slack)
	if err != nil {
		return nil, fmt.Errorf("facial image: %w: %w", err, ErrCardData)
	}
	return buildFacial(sign, jpg, fasc, d.CardUUID, now, d.ValidUntil)
}

func spoiled(check string, err error) error {
	return fmt.Errorf("personalize: verify: %w: %s: %w", ErrSpoiled, check, err)
}

// writeErr classifies a failed write: a full card can never take this
// profile, and a card refusing the transport PIN or PUK can never get
// known ones (spoiled); anything else (card removed, reader error) may be
// resumed on the same chip.
func writeErr(err error) error {
	var auth *apdu.AuthError
	if errors.Is(err, apdu.ErrMemoryFull) || errors.Is(err, apdu.ErrAuthBlocked) || errors.As(err, &auth) {
		return fmt.Errorf("personalize: %w: %w", ErrSpoiled, err)
	}
	return fmt.Errorf("personalize: %w", err)
}

// newSecrets draws a 6-digit PIN and an 8-digit PUK, avoiding the transport
// values and trivial sequences a cardholder could guess.
func newSecrets(stock StockProfile) (pin, puk string, err error) {
	for pin == "" || weak(pin) || pin == stock.PIN {
		if pin, err = randomDigits(6); err != nil {
			return "", "", err
		}
	}
	for puk == "" || weak(puk) || puk == stock.PUK {
		if puk, err = randomDigits(8); err != nil {
			return "", "", err
		}
	}
	return pin, puk, nil
}

func weak(s string) bool {
	return strings.Count(s, s[:1]) == len(s) || strings.Contains("01234567890", s) || strings.Contains("98765432109", s)
}

// cardKey is the per-card management key for the card UUID, in the stock's
// per-card algorithm.
func (p *Personalizer) cardKey(uuid [16]byte) (mgmtKey, error) {
	alg := p.stock.cardMgmtAlg()
	key, err := p.master.cardKey(uuid, alg)
	if err != nil {
		return mgmtKey{}, fmt.Errorf("personalize: derive the card's management key: %w", err)
	}
	return mgmtKey{alg, key}, nil
}

// serialHex is a certificate serial number as the station stores and
// reports it: lower-case hex of its big-endian bytes.
func serialHex(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }
