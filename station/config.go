package station

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"id06/lane"
	"id06/order"
	"id06/personalize"
	"id06/queue"
	"id06/webhook"
)

// Config is everything `station serve` can be told: the JSON of its
// --config file, over which the flags and STATION_* variables go (see
// cmd/station).
type Config struct {
	Listen  string `json:"listen"`
	DataDir string `json:"data"`
	DB      string `json:"db"`      // sqlite:PATH or postgres://…; "" = sqlite:DATA/station.db
	Name    string `json:"name"`    // this station's name in a fleet; "" = the host name
	Reader  string `json:"reader"`  // lane main's: sim | pcsc[:NAME]
	Stock   string `json:"stock"`   // card stock profile: generic | yubikey
	Printer string `json:"printer"` // lane main's: spool[:DIR] | ipp:URI | sim[:OPTIONS]
	// Lanes are the production lanes: in the config file the list as
	// written; once parsed (cmd/station), the lanes the station runs.
	Lanes        []lane.Config `json:"lanes"`
	Template     string        `json:"template"`      // card face template file; "" = the built-in ID06 template
	CardPrefix   string        `json:"card_prefix"`   // the supplier's two-letter code
	Issuer       string        `json:"issuer"`        // card supplier name on the card back and certificates
	MaxBlanks    int           `json:"max_blanks"`    // spoiled blanks before an order fails
	PhotoWorkers int           `json:"photo_workers"` // concurrent photo stages
	SealTo       string        `json:"seal_to"`       // age recipient for PIN/PUK; "" = a development key in DATA/pki
	CACert       string        `json:"ca_cert"`       // issuing CA (PEM); "" = a development CA in DATA/pki
	CAKey        string        `json:"ca_key"`
	// PKIBaseURL is where relying parties fetch /pki/ca.crl and /pki/ca.crt
	// (named in every card certificate); "" = this station's own address.
	PKIBaseURL        string `json:"pki_base_url"`
	CertPolicyOID     string `json:"cert_policy_oid"`      // 9A certificate policy; "" = personalize.DefaultAuthPolicy (an example OID)
	CardAuthPolicyOID string `json:"card_auth_policy_oid"` // 9E certificate policy; "" = personalize.DefaultCardAuthPolicy
	// The CA, content-signing and master management keys in a PKCS#11
	// token (an HSM) instead of files in DATA/pki: the module and the
	// token label. The user PIN comes from STATION_PKCS11_PIN or the file
	// pkcs11_pin_file, never from the configuration file.
	PKCS11Module  string `json:"pkcs11_module"`
	PKCS11Token   string `json:"pkcs11_token"`
	PKCS11PINFile string `json:"pkcs11_pin_file"`
	PKCS11PIN     string `json:"-"` // from STATION_PKCS11_PIN
	TLSCert       string `json:"tls_cert"`
	TLSKey        string `json:"tls_key"`
	MaxBodyBytes  int64  `json:"max_body_bytes"`
	// Per-supplier API rate: sustained requests per second and burst.
	RatePerSecond float64 `json:"rate_per_second"`
	RateBurst     int     `json:"rate_burst"`
	// Suppliers with their webhook settings; tokens are created with
	// `station token create`.
	Suppliers []webhook.Supplier `json:"suppliers"`
	// Production refuses to start with the development CA or the development
	// sealing key, and makes no dev token.
	Production bool `json:"production"`

	Lease           time.Duration `json:"-"` // how long a worker's claim holds unless extended
	PrinterPatience time.Duration `json:"-"` // how long a busy printer is retried before the station pauses
}

// Defaults are the embedded defaults of docs/design.md §7.
func Defaults() Config {
	host, _ := os.Hostname()
	return Config{
		Listen:          "127.0.0.1:8080",
		Name:            host,
		DataDir:         "./var",
		Reader:          "sim",
		Stock:           personalize.StockGeneric,
		Printer:         "spool",
		CardPrefix:      "BB",
		Issuer:          "ID06 Card Supplier AB",
		MaxBlanks:       3,
		PhotoWorkers:    2,
		MaxBodyBytes:    32 << 20,
		RatePerSecond:   100,
		RateBurst:       500,
		Lease:           30 * time.Second,
		PrinterPatience: time.Minute,
	}
}

// DevelopmentCA reports whether cards are signed by the development CA that
// the station made itself in DATA/pki: no relying party trusts it.
func (c Config) DevelopmentCA() bool { return c.CACert == "" }

// DevelopmentSeal reports whether PIN and PUK are sealed to the development
// age key, whose private half lies next to them in DATA/pki.
func (c Config) DevelopmentSeal() bool { return c.SealTo == "" }

// Validate refuses a configuration the station cannot run with.
func (c Config) Validate() error {
	var errs []error
	if err := order.CheckCardPrefix(c.CardPrefix); err != nil {
		errs = append(errs, fmt.Errorf("card_prefix: %w", err))
	}
	if _, err := c.LaneConfigs(); err != nil {
		errs = append(errs, err)
	}
	if _, err := personalize.Stock(c.Stock); err != nil {
		errs = append(errs, fmt.Errorf("stock %q: use %s", c.Stock, strings.Join(personalize.StockNames(), " or ")))
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "sqlite:") && !queue.IsPostgres(c.DB) {
		errs = append(errs, fmt.Errorf("db %q: use sqlite:PATH or postgres://USER@HOST/DATABASE", c.DB))
	}
	if c.Name == "" || strings.ContainsAny(c.Name, " /\t\n") || len(c.Name) > 64 {
		errs = append(errs, fmt.Errorf("name %q: one word naming this station in the fleet", c.Name))
	}
	if c.MaxBlanks < 1 {
		errs = append(errs, errors.New("max_blanks must be at least 1"))
	}
	if c.RatePerSecond <= 0 || c.RateBurst < 1 {
		errs = append(errs, errors.New("rate_per_second and rate_burst must be positive"))
	}
	if c.PKCS11Module != "" && c.CAKey != "" {
		errs = append(errs, errors.New("ca_key is a key file: with pkcs11_module the CA key is in the token (label "+personalize.KeyLabelPrefix+personalize.KeyCA+")"))
	}
	if (c.PKCS11Module == "") != (c.PKCS11Token == "") || (c.PKCS11Module == "" && c.PKCS11PINFile != "") {
		errs = append(errs, errors.New("pkcs11_module and pkcs11_token go together (pkcs11_pin_file with them)"))
	}
	if c.PKCS11Module == "" && (c.CACert == "") != (c.CAKey == "") {
		errs = append(errs, errors.New("ca_cert and ca_key go together"))
	}
	if c.Production {
		if c.DevelopmentCA() || (c.CAKey == "" && c.PKCS11Module == "") {
			errs = append(errs, errors.New("production: configure ca_cert and ca_key (or its key in the PKCS#11 token), the issuing CA's certificate and key (PEM); without them cards would be signed by a development CA"))
		}
		if c.DevelopmentSeal() {
			errs = append(errs, errors.New("production: configure seal_to, the supplier's age recipient (age1…); without it PIN and PUK would be sealed to a development key kept in the data directory"))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert and tls_key go together"))
	}
	for i, s := range c.Suppliers {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("suppliers[%d].name is empty", i))
		}
		if s.WebhookURL != "" && s.WebhookSecret == "" {
			errs = append(errs, fmt.Errorf("suppliers[%d] (%s): webhook_url needs a webhook_secret to sign with", i, s.Name))
		}
		if s.WebhookURL != "" {
			if err := webhook.CheckURL(s.WebhookURL, s.AllowLinkLocalWebhook); err != nil {
				errs = append(errs, fmt.Errorf("suppliers[%d] (%s): webhook_url %w", i, s.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// CertProfile is the certificate profile of the cards this station makes.
func (c Config) CertProfile() personalize.CertProfile {
	base := c.PKIBaseURL
	if base == "" {
		scheme := "http"
		if c.TLSCert != "" {
			scheme = "https"
		}
		base = scheme + "://" + c.Listen
	}
	return personalize.CertProfile{PKIBaseURL: base, AuthPolicy: c.CertPolicyOID, CardAuthPolicy: c.CardAuthPolicyOID}
}

// OpenKeyStore opens the configured PKCS#11 token; with none configured it
// returns nil, and the station keeps its keys in files in DATA/pki.
func (c Config) OpenKeyStore() (*personalize.PKCS11KeyStore, error) {
	if c.PKCS11Module == "" {
		return nil, nil
	}
	pin := c.PKCS11PIN
	if pin == "" && c.PKCS11PINFile != "" {
		b, err := os.ReadFile(c.PKCS11PINFile)
		if err != nil {
			return nil, fmt.Errorf("pkcs11_pin_file: %w", err)
		}
		pin = strings.TrimSpace(string(b))
	}
	return personalize.OpenPKCS11(personalize.PKCS11Config{Module: c.PKCS11Module, TokenLabel: c.PKCS11Token, PIN: pin})
}

// LaneConfigs are the lanes the station runs: Lanes, or else the one lane
// main of Reader and Printer; checked against each other.
func (c Config) LaneConfigs() ([]lane.Config, error) {
	return lane.Resolve(lane.Sources{File: c.Lanes, Reader: c.Reader, Printer: c.Printer}, c.DataDir)
}

// OpenLanes opens the devices of every lane; closeAll closes them.
func OpenLanes(c Config) (lanes []*lane.Lane, closeAll func() error, err error) {
	configs, err := c.LaneConfigs()
	if err != nil {
		return nil, nil, err
	}
	var devs []*lane.Devices
	closeAll = func() error {
		var errs []error
		for _, d := range devs {
			errs = append(errs, d.Close())
		}
		return errors.Join(errs...)
	}
	for _, lc := range configs {
		d, err := lane.Open(lc, c.DataDir, c.Stock)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		devs = append(devs, d)
		lanes = append(lanes, lane.New(lc, d))
	}
	return lanes, closeAll, nil
}

// DBPath is where the database lives.
func (c Config) DBPath() string { return filepath.Join(c.DataDir, "station.db") }

// Database names the database: the db setting, else the SQLite file in
// the data directory.
func (c Config) Database() string { return DatabaseOf(c.DB, c.DataDir) }

// DatabaseOf is the database a --db value names, with the data
// directory's SQLite file when it is empty.
func DatabaseOf(db, dataDir string) string {
	if db != "" {
		return db
	}
	return "sqlite:" + filepath.Join(dataDir, "station.db")
}

// DevTokenPath is where the development supplier token is written.
func (c Config) DevTokenPath() string { return filepath.Join(c.DataDir, "dev-token") }
