package personalize

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"id06/internal/integration"
	"id06/personalize/apdu"
	"id06/personalize/pcsc"
	"id06/personalize/pcscdtest"
)

func TestMain(m *testing.M) {
	pcscdtest.MaybeServeCard()
	os.Exit(m.Run())
}

func run(t testing.TB, env *pcscdtest.Env, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// withCard connects through the real pcscd, runs f and releases the card
// (the connection is exclusive, so tools can only run between these).
func withCard(t testing.TB, env *pcscdtest.Env, f func(card apdu.Card)) {
	t.Helper()
	env.WithCard(t, func(_ context.Context, card apdu.Card) { f(card) })
}

const mgmtKeyHex = "010203040506070801020304050607080102030405060708"

// TestPCSCIndependentTools personalizes the emulated card behind a real
// pcscd + vpcd with ebfe/scard, then checks it with OpenSC,
// yubico-piv-tool and openssl, and makes sure Verify catches an object
// rewritten by yubico-piv-tool.
func TestPCSCIndependentTools(t *testing.T) {
	integration.Tool(t, "pkcs15-tool", "opensc")
	integration.Tool(t, "yubico-piv-tool", "yubico-piv-tool")
	integration.Tool(t, "openssl", "openssl")
	integration.Tool(t, "pkcs15-crypt", "opensc")
	env := pcscdtest.Start(t, nil)
	ctx := context.Background()
	f := newFixture(t, DefaultStock())
	var res *Result
	withCard(t, env, func(card apdu.Card) {
		var err error
		if res, err = f.p.Personalize(ctx, card, f.data, Record{}); err != nil {
			t.Fatal(err)
		}
	})
	pin := f.openSecrets(t, res.SealedSecrets).PIN

	guid := strings.ToLower(hex.EncodeToString(f.data.CardUUID[:]))
	out := run(t, env, "pkcs15-tool", "-r", env.ReaderName, "-D")
	if !strings.Contains(strings.ToLower(out), guid) {
		t.Errorf("pkcs15-tool -D does not show the CHUID GUID %s:\n%s", guid, out)
	}
	for _, want := range []string{"X.509 Certificate [Certificate for PIV Authentication]", "X.509 Certificate [Certificate for Card Authentication]",
		"Private EC Key [PIV AUTH key]", "Private EC Key [CARD AUTH key]"} {
		if !strings.Contains(out, want) {
			t.Errorf("pkcs15-tool -D does not list %q:\n%s", want, out)
		}
	}

	out = run(t, env, "yubico-piv-tool", "-r", "Virtual", "-a", "status")
	if !strings.Contains(strings.ToLower(out), "chuid:\t") || !strings.Contains(strings.ToLower(strings.ReplaceAll(out, " ", "")), guid) {
		t.Errorf("yubico-piv-tool -a status does not show the CHUID with GUID %s:\n%s", guid, out)
	}
	if !strings.Contains(out, "Slot 9a:") || !strings.Contains(out, f.data.CardNumber) {
		t.Errorf("yubico-piv-tool -a status does not show the 9A certificate for %s:\n%s", f.data.CardNumber, out)
	}
	if !strings.Contains(out, "Slot 9e:") || !strings.Contains(out, "serialNumber="+uuidString(f.data.CardUUID)) {
		t.Errorf("yubico-piv-tool -a status does not show the 9E certificate of card %s:\n%s", uuidString(f.data.CardUUID), out)
	}

	certPEM := run(t, env, "yubico-piv-tool", "-r", "Virtual", "-a", "read-certificate", "-s", "9a")
	dir := t.TempDir()
	certFile := filepath.Join(dir, "9a.pem")
	if err := os.WriteFile(certFile, []byte(certPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run(t, env, "openssl", "verify", "-CAfile", filepath.Join(f.dir, caCertFile), certFile)
	if !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify: %s", out)
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatalf("read-certificate printed no PEM:\n%s", certPEM)
	}
	if c, err := x509.ParseCertificate(block.Bytes); err != nil || hex.EncodeToString(c.SerialNumber.Bytes()) != res.CertSerial {
		t.Errorf("certificate read by yubico-piv-tool: %v, serial differs from %s", err, res.CertSerial)
	}

	withCard(t, env, func(card apdu.Card) {
		rep, err := f.verify(t, card, pin)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK {
			t.Fatalf("Verify through pcscd: %+v", rep.Failed())
		}
	})

	// OpenSC signs with the 9A key after the new PIN (a standard
	// middleware can use the card), and the signature verifies with the
	// certificate.
	digest := sha256Sum([]byte("challenge for " + f.data.CardNumber))
	digestFile, sigFile := filepath.Join(dir, "digest.bin"), filepath.Join(dir, "sig.der")
	if err := os.WriteFile(digestFile, digest, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, env, "pkcs15-crypt", "-r", "0", "-s", "-k", "01", "--sha-256", "-f", "openssl", "-i", digestFile, "-o", sigFile, "-p", pin)
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := x509.ParseCertificate(block.Bytes); err != nil || !ecdsa.VerifyASN1(c.PublicKey.(*ecdsa.PublicKey), digest, sig) {
		t.Errorf("the signature made by OpenSC with slot 9A does not verify with the certificate (%v)", err)
	}

	// The stock's transport key no longer opens the card: yubico-piv-tool,
	// which uses it by default, can change nothing.
	for _, args := range [][]string{
		{"-r", "Virtual", "-a", "set-chuid"},
		{"-r", "Virtual", "-k" + mgmtKeyHex, "-a", "set-ccc"},
	} {
		if out, err := runErr(env, "yubico-piv-tool", args...); err == nil || !strings.Contains(out, "authentication") {
			t.Errorf("yubico-piv-tool %v after production: %v\n%s", args, err, out)
		}
	}
	withCard(t, env, func(card apdu.Card) {
		s := &session{card: card, extended: true}
		if err := s.selectPIV(ctx); err != nil {
			t.Fatal(err)
		}
		// Raw GENERAL AUTHENTICATE with every well-known 3DES and AES key.
		for _, k := range wellKnownKeys() {
			if ok, err := s.accepts(ctx, k); ok || err != nil {
				t.Errorf("the card accepts the well-known %s key % X (%v)", algName(k.Alg), k.Key, err)
			}
		}
		// The per-card key opens it; an insider who uses it to swap in
		// another card's CCC is caught.
		s = f.cardKeySession(t, card)
		if err := s.putData(ctx, objCCC.Tag, container(buildCCC([16]byte{0xEE}))); err != nil {
			t.Fatal(err)
		}
		rep, err := f.verify(t, card, pin)
		if err != nil {
			t.Fatal(err)
		}
		failed := rep.Failed()
		if rep.OK || len(failed) != 1 || failed[0].Name != objCCC.String() {
			t.Fatalf("Verify after the CCC was rewritten: failed %+v, want only %q", failed, objCCC)
		}
	})
}

func runErr(env *pcscdtest.Env, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apduCount counts the command APDUs in pcscd's trace.
func apduCount(env *pcscdtest.Env) int {
	n := 0
	for _, l := range env.Trace() {
		if strings.Contains(l, "APDU:") {
			n++
		}
	}
	return n
}

// yubico-piv-tool writes objects of at most 3063 bytes (YKPIV_OBJ_MAX_SIZE),
// so both PC/SC benchmarks use a portrait small enough for it to write.
func benchFixture(b *testing.B, stock StockProfile) *fixture {
	f := newFixture(b, stock)
	f.data.FacialJPEG = smallPortrait(b, 96, 120, 40)
	return f
}

// BenchmarkPersonalizePCSC personalizes fresh blanks through pcscd + vpcd
// (each Connect gets a new blank).
func BenchmarkPersonalizePCSC(b *testing.B) {
	env := pcscdtest.StartBlanks(b)
	for _, bc := range []struct {
		name  string
		stock StockProfile
	}{
		{"extended", DefaultStock()},
		{"chained", StockProfile{PIN: "123456", PUK: "12345678", MgmtKey: DefaultStock().MgmtKey, MgmtAlg: 0x03}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := benchFixture(b, bc.stock)
			ctx := context.Background()
			r, err := pcsc.Open(env.ReaderName)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			before := apduCount(env)
			b.ResetTimer()
			for b.Loop() {
				card, err := r.Connect(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.p.Personalize(ctx, card, f.data, Record{}); err != nil {
					b.Fatal(err)
				}
				card.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(apduCount(env)-before)/float64(b.N), "APDUs/card")
		})
	}
}

// BenchmarkYubicoPivToolPCSC personalizes the same emulator with
// yubico-piv-tool doing the equivalent steps: management key auth,
// generate 9A, import the certificate (issued by our CA), set CHUID and
// CCC, write printed information, facial image and security object,
// change PIN and PUK.
func BenchmarkYubicoPivToolPCSC(b *testing.B) {
	integration.Tool(b, "yubico-piv-tool", "yubico-piv-tool")
	env := pcscdtest.StartBlanks(b)
	f := benchFixture(b, DefaultStock())
	dir := b.TempDir()
	sign := signer{f.p.pki.signerCert, f.p.pki.signerKey}
	fasc, _ := newFASCN(f.data.CardNumber)
	fb, _ := fasc.encode()
	objs := map[uint][]byte{}
	objs[objPrinted.Tag] = newPrintedInfo(f.data, "Test Issuer AB").encode()
	facialV, err := buildFacial(sign, f.data.FacialJPEG, fb, f.data.CardUUID, f.now, f.data.ValidUntil)
	if err != nil {
		b.Fatal(err)
	}
	objs[objFacial.Tag] = facialV
	if len(facialV) > 3063 {
		b.Fatalf("facial image object is %d bytes, more than yubico-piv-tool writes", len(facialV))
	}
	chuidV, _ := buildCHUID(sign, fb, f.data.CardUUID, f.data.ValidUntil)
	containers := map[uint][]byte{objCHUID.Tag: container(chuidV), objCCC.Tag: container(buildCCC(f.data.CardUUID)),
		objPrinted.Tag: container(objs[objPrinted.Tag]), objFacial.Tag: container(facialV)}
	if objs[objSecurity.Tag], err = buildSecurityObject(sign, containers); err != nil {
		b.Fatal(err)
	}
	for tag, v := range objs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%X.bin", tag)), v, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	pubFile, certFile := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "cert.pem")
	tool := func(args ...string) {
		run(b, env, "yubico-piv-tool", append([]string{"-r", "Virtual", "-k" + mgmtKeyHex}, args...)...)
	}
	before := apduCount(env)
	b.ResetTimer()
	for b.Loop() {
		tool("-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", pubFile)
		pubPEM, err := os.ReadFile(pubFile)
		if err != nil {
			b.Fatal(err)
		}
		blk, _ := pem.Decode(pubPEM)
		if blk == nil {
			b.Fatal("generate wrote no PEM public key")
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		cert, err := f.p.pki.issueCardCert(slotPIVAuth, pub, f.data, f.now)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			b.Fatal(err)
		}
		tool("-a", "import-certificate", "-s", "9a", "-i", certFile, "-a", "set-chuid", "-a", "set-ccc")
		for _, o := range []object{objPrinted, objFacial, objSecurity} {
			tool("-a", "write-object", "--id", fmt.Sprintf("0x%X", o.Tag), "-f", "binary", "-i", filepath.Join(dir, fmt.Sprintf("%X.bin", o.Tag)))
		}
		tool("-a", "change-pin", "-P", "123456", "-N", "385912")
		tool("-a", "change-puk", "-P", "12345678", "-N", "70315864")
		// The next iteration needs a fresh blank: a reset feeds one.
		withCard(b, env, func(apdu.Card) {})
	}
	b.StopTimer()
	b.ReportMetric(float64(apduCount(env)-before)/float64(b.N), "APDUs/card")
}

// On YubiKey-class stock every object stays within 3,052 bytes, so
// yubico-piv-tool (which reads objects into a 3,072-byte buffer) reads each
// one back through the real pcscd, byte for byte as the station wrote it.
func TestYubiKeyStockReadBackByYubicoPivTool(t *testing.T) {
	integration.Tool(t, "yubico-piv-tool", "yubico-piv-tool")
	env := pcscdtest.StartStock(t, StockYubiKey)
	ctx := context.Background()
	stock, err := Stock(StockYubiKey)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, stock)
	f.data.FacialJPEG = smallPortrait(t, 300, 380, 90) // far larger than the stock takes
	var res *Result
	want := map[uint][]byte{}
	withCard(t, env, func(card apdu.Card) {
		if res, err = f.p.Personalize(ctx, card, f.data, Record{}); err != nil {
			t.Fatal(err)
		}
		for tag, c := range f.readBack(t, card, res) {
			if want[tag], err = apdu.Unwrap(c, 0x53); err != nil {
				t.Fatal(err)
			}
		}
	})
	pin := f.openSecrets(t, res.SealedSecrets).PIN
	dir := t.TempDir()
	for _, o := range written {
		out := filepath.Join(dir, fmt.Sprintf("%X.bin", o.Tag))
		run(t, env, "yubico-piv-tool", "-r", "Virtual", "-a", "verify-pin", "-P", pin,
			"-a", "read-object", "--id", fmt.Sprintf("0x%X", o.Tag), "-f", "binary", "-o", out)
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[o.Tag]) {
			t.Errorf("%s read by yubico-piv-tool: %d bytes, differ from the %d the station wrote", o, len(got), len(want[o.Tag]))
		}
	}
}
