package personalize

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"

	"id06/personalize/apdu"
	"id06/personalize/emulator"
)

// produced personalizes a fresh generic card and returns it with its PIN.
func (f *fixture) produced(t *testing.T) (apdu.Card, string, *Result) {
	t.Helper()
	card := connect(t, emulator.NewReader("test", emulator.DefaultStock(), ""))
	res, err := f.p.Personalize(context.Background(), card, f.data, Record{})
	if err != nil {
		t.Fatal(err)
	}
	return card, f.openSecrets(t, res.SealedSecrets).PIN, res
}

func checkNamed(rep *Report, name string) (Check, bool) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// QA verification fails a revoked card, a card that answers to a
// well-known management key and a card another station's master key did
// not key; it skips (never passes) what it cannot check.
func TestVerifierVerdicts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, DefaultStock())
	card, pin, res := f.produced(t)
	emptyCRL, err := f.p.IssueCRL(nil, 1, f.now)
	if err != nil {
		t.Fatal(err)
	}
	revokedCRL, err := f.p.IssueCRL([]Revoked{{Serial: res.Certs[1].Serial, At: f.now, Reason: ReasonStolen}}, 2, f.now)
	if err != nil {
		t.Fatal(err)
	}
	crl := func(der []byte) CRLSource {
		return func(context.Context, *x509.Certificate) ([]byte, error) { return der, nil }
	}
	other := newFixture(t, DefaultStock())
	tests := []struct {
		name   string
		cfg    VerifyConfig
		result Outcome
		check  string
		status CheckStatus
		detail string
	}{
		{"everything at hand", VerifyConfig{Keys: FileKeyStore{Dir: f.dir}, CRL: crl(emptyCRL)}, ResultPass, checkCardKey, Pass, ""},
		{"9E certificate on the CRL", VerifyConfig{Keys: FileKeyStore{Dir: f.dir}, CRL: crl(revokedCRL)}, ResultFail, checkRevocation, Fail, res.Certs[1].Serial + " is revoked"},
		{"CRL of another CA", VerifyConfig{Keys: FileKeyStore{Dir: f.dir}, CRL: crl(must(other.p.IssueCRL(nil, 1, f.now)))}, ResultIncomplete, checkRevocation, Skipped, "not signed by the issuing CA"},
		{"no CRL", VerifyConfig{Keys: FileKeyStore{Dir: f.dir}}, ResultIncomplete, checkRevocation, Skipped, "no CRL"},
		{"no master key", VerifyConfig{CRL: crl(emptyCRL)}, ResultIncomplete, checkCardKey, Skipped, "no master management key"},
		{"objects over the stock's limit", VerifyConfig{Stock: mustStock(StockYubiKey), Keys: FileKeyStore{Dir: f.dir}, CRL: crl(emptyCRL)}, ResultFail, objFacial.String(), Fail, "at most 3052"},
		{"another station's master key", VerifyConfig{Keys: FileKeyStore{Dir: other.dir}, CRL: crl(emptyCRL)}, ResultFail, checkCardKey, Fail, "made by another station"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.CACert, tt.cfg.Now = f.p.pki.caCert, f.p.now
			v, err := NewVerifier(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := v.Verify(ctx, card, pin)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := checkNamed(rep, tt.check)
			if rep.Result != tt.result || !ok || c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
				t.Fatalf("result %s, %q: %+v; failed %+v, skipped %+v", rep.Result, tt.check, c, rep.Failed(), rep.Skipped())
			}
		})
	}

	// A card re-keyed to the factory key fails, naming the key.
	s := f.cardKeySession(t, card)
	if err := s.setManagementKey(ctx, mgmtKey{0x0A, emulator.DefaultManagementKey}); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifyConfig{CACert: f.p.pki.caCert, Keys: FileKeyStore{Dir: f.dir}, CRL: crl(emptyCRL), Now: f.p.now})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := v.Verify(ctx, card, "")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := checkNamed(rep, checkDefaultKeys)
	if rep.Result != ResultFail || c.Status != Fail || !strings.Contains(c.Detail, "AES-192 0102030405060708") {
		t.Fatalf("card with the factory key: %s, %+v", rep.Result, c)
	}
	if _, err := NewVerifier(VerifyConfig{}); err == nil {
		t.Fatal("a verifier without a CA")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func mustStock(name string) StockProfile {
	s, err := Stock(name)
	if err != nil {
		panic(err)
	}
	return s
}

// A CRL given as a pipe (a shell's <(curl …), /dev/stdin) can be read only
// once; every certificate checked against it gets the same CRL, not an
// empty second read ("x509: malformed crl").
func TestCRLFromFileReadsOnce(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := []byte("the CRL bytes")
	w.Write(want)
	w.Close()
	src := CRLFromFile(fmt.Sprintf("/dev/fd/%d", r.Fd()))
	for i := range 2 {
		got, err := src(context.Background(), nil)
		if err != nil || string(got) != string(want) {
			t.Fatalf("read %d: %q %v, want %q", i+1, got, err, want)
		}
	}
}
