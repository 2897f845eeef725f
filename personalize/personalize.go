// Package personalize encodes the ID06 PIV profile onto a blank chip and
// verifies it (docs/design.md §6): management key authentication, key generation in
// slot 9A, the PIV Authentication certificate from the issuing CA, CHUID,
// CCC, Printed Information, Facial Image, Security Object, random PIN/PUK
// sealed to the supplier, and read-back verification.
package personalize

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"

	"id06/personalize/apdu"
)

// Config configures a Personalizer.
type Config struct {
	// PKIDir holds the certificates: the development CA (ca.pem), created
	// on first run unless CACert is given, and the content-signing
	// certificate; the check value of the master management key; the
	// development supplier-age.key; and, with the file key store, the keys.
	PKIDir string
	// Keys holds the CA, content-signing and master management keys; nil
	// = a FileKeyStore in PKIDir (with the CA key in CAKey when given).
	Keys          KeyStore
	CACert, CAKey string       // optional configured CA (PEM files; CAKey only with the file key store)
	Stock         StockProfile // zero value = DefaultStock()
	Certs         CertProfile  // PKIBaseURL is required
	// SealTo is the age X25519 recipient (age1…) the PIN and PUK are sealed
	// to; "" = a development identity in PKIDir/supplier-age.key.
	SealTo string
	Issuer string // issuer name for certificates and printed information
	Now    func() time.Time
}

// Personalizer encodes and verifies cards. It holds no per-card state and
// may be used for several cards concurrently.
type Personalizer struct {
	stock  StockProfile
	pki    *pki
	master masterKey
	sealTo age.Recipient
	issuer string
	now    func() time.Time
}

// New loads (or on first run creates) the CA, the content signer and the
// sealing recipient.
func New(cfg Config) (*Personalizer, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer == "" {
		return nil, errors.New("personalize: Config.Issuer is required")
	}
	if cfg.Stock.MgmtKey == nil && cfg.Stock.PIN == "" && cfg.Stock.PUK == "" {
		cfg.Stock = DefaultStock()
	}
	if err := cfg.Stock.validate(); err != nil {
		return nil, err
	}
	ks := cfg.Keys
	switch {
	case ks == nil && (cfg.CACert == "") != (cfg.CAKey == ""):
		return nil, errors.New("personalize: configure both CACert and CAKey, or neither")
	case ks == nil:
		ks = FileKeyStore{Dir: cfg.PKIDir, CAKeyPath: cfg.CAKey}
	case cfg.CAKey != "":
		return nil, errors.New("personalize: CAKey is a key file: with a key store the CA key is in the store")
	}
	prof, err := cfg.Certs.withDefaults()
	if err != nil {
		return nil, err
	}
	p, err := loadPKI(ks, cfg.PKIDir, cfg.CACert, cfg.Issuer, cfg.Now())
	if err != nil {
		return nil, err
	}
	p.profile = prof
	master, err := loadMaster(ks, cfg.PKIDir)
	if err != nil {
		return nil, err
	}
	r, err := recipient(cfg.SealTo, cfg.PKIDir)
	if err != nil {
		return nil, err
	}
	return &Personalizer{stock: cfg.Stock, pki: p, master: master, sealTo: r, issuer: cfg.Issuer, now: cfg.Now}, nil
}

// CACertificate returns the issuing CA certificate (for QA tools and tests).
func (p *Personalizer) CACertificate() *x509.Certificate { return p.pki.caCert }

// CardData is what goes onto one card.
type CardData struct {
	CardNumber  string // "BB-1234-567890"
	CardUUID    [16]byte
	HolderName  string // first + last
	PrintName   string
	Company     string
	OrgNumber   string
	ValidUntil  time.Time
	FacialJPEG  []byte // portrait JPEG from the photo stage; recompressed when the object would not fit
	ExpectedUID []byte // set when resuming an order that already recorded a chip UID
}

func (d CardData) validate(now time.Time) error {
	var missing []string
	if d.CardNumber == "" {
		missing = append(missing, "card number")
	}
	if d.CardUUID == ([16]byte{}) {
		missing = append(missing, "card UUID")
	}
	if strings.TrimSpace(d.HolderName) == "" {
		missing = append(missing, "holder name")
	}
	if strings.TrimSpace(d.Company) == "" {
		missing = append(missing, "company")
	}
	if len(d.FacialJPEG) == 0 {
		missing = append(missing, "facial image")
	}
	if len(missing) > 0 {
		return fmt.Errorf("personalize: card data lacks %s: %w", strings.Join(missing, ", "), ErrCardData)
	}
	if !d.ValidUntil.After(now) {
		return fmt.Errorf("personalize: card validity %s is not in the future: %w", d.ValidUntil.Format(time.DateOnly), ErrCardData)
	}
	return nil
}

// Record receives what the caller must store before the chip changes, so
// that a crash loses none of it: the chip UID before the first write, and
// each certificate before it goes onto the chip (to revoke it should the
// blank be spoiled). A nil func records nothing.
type Record struct {
	UID  func(uid []byte) error
	Cert func(IssuedCert) error
}

// IssuedCert is a certificate issued for a card.
type IssuedCert struct {
	Slot     string // "9a" (PIV Authentication) or "9e" (Card Authentication)
	Serial   string // hex, lower case, as serialHex writes it
	NotAfter time.Time
}

// Result of a successful personalization.
type Result struct {
	UID           []byte
	CertSerial    string       // hex serial number of the PIV Authentication certificate
	Certs         []IssuedCert // the certificates on the chip
	SealedSecrets []byte       // age-armored JSON {card_number, pin, puk}
	APDUs         int          // command APDUs sent
}

var (
	// ErrNotBlank: the card carries a CHUID and is not the one this order
	// recorded.
	ErrNotBlank = errors.New("card is not blank")
	// ErrSpoiled: the chip cannot be (or was not) personalized correctly;
	// the blank is spoiled and the order must be retried on a new one.
	ErrSpoiled = errors.New("chip spoiled")
	// ErrCardData: the order's data cannot go on a chip (missing, expired,
	// too large for the card stock). It is found before the card is touched,
	// and another blank would fare no better.
	ErrCardData = errors.New("the card data cannot be written")
)

// ReadUID asks the reader for the chip UID (PC/SC pseudo-APDU FF CA 00 00 00).
func ReadUID(ctx context.Context, card apdu.Card) ([]byte, error) {
	uid, err := apdu.Do(ctx, card, apdu.Command{CLA: 0xFF, INS: 0xCA, Le: 256})
	if err != nil {
		return nil, fmt.Errorf("personalize: read chip UID: %w", err)
	}
	if len(uid) == 0 {
		return nil, errors.New("personalize: reader returned an empty chip UID")
	}
	return uid, nil
}
