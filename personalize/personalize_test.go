package personalize

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/disintegration/imaging"

	"id06/personalize/apdu"
	"id06/personalize/emulator"
)

// sharedTestdata finds ../shared/testdata by walking up from the package.
func sharedTestdata(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		for _, c := range []string{filepath.Join(dir, "shared", "testdata"), filepath.Join(dir, "..", "shared", "testdata")} {
			if fi, err := os.Stat(c); err == nil && fi.IsDir() {
				return c
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/testdata not found above the package directory")
		}
		dir = parent
	}
}

var (
	portraitOnce sync.Once
	portrait     []byte
	portraitErr  error
)

// smallPortrait is a real portrait reduced to w×h grey at quality q.
func smallPortrait(t testing.TB, w, h, q int) []byte {
	t.Helper()
	img, err := imaging.Open(filepath.Join(sharedTestdata(t), "photos", "dev", "pass_london_001_03.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, imaging.Grayscale(imaging.Fill(img, w, h, imaging.Center, imaging.Lanczos)), &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testPortrait is a real portrait reduced the way the photo stage does
// (small grey JPEG), so the facial image has a realistic size.
func testPortrait(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(sharedTestdata(t), "photos", "dev", "pass_london_001_03.jpg")
	portraitOnce.Do(func() {
		img, err := imaging.Open(path)
		if err != nil {
			portraitErr = err
			return
		}
		small := imaging.Grayscale(imaging.Fill(img, 240, 300, imaging.Center, imaging.Lanczos))
		var buf bytes.Buffer
		portraitErr = jpeg.Encode(&buf, small, &jpeg.Options{Quality: 60})
		portrait = buf.Bytes()
	})
	if portraitErr != nil {
		t.Fatal(portraitErr)
	}
	return portrait
}

type fixture struct {
	p    *Personalizer
	dir  string
	now  time.Time
	data CardData
}

func newFixture(t testing.TB, stock StockProfile) *fixture {
	t.Helper()
	return newFixtureAt(t, stock, time.Now().UTC().Truncate(time.Second))
}

func newFixtureAt(t testing.TB, stock StockProfile, now time.Time) *fixture {
	t.Helper()
	dir := t.TempDir()
	p, err := New(Config{PKIDir: dir, Certs: testCerts, Stock: stock, Issuer: "Test Issuer AB", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	d := CardData{
		CardNumber: "BB-1234-567890",
		CardUUID:   [16]byte{0x3f, 0x2a, 0x11, 0x90, 0x5c, 0x41, 0x4e, 0x8b, 0x9d, 0x07, 0x6b, 0x21, 0xe4, 0x55, 0x0c, 0xaa},
		HolderName: "Åsa Östlund-Wiśniewska",
		PrintName:  "Åsa Östlund-Wiśniewska",
		Company:    "Bygg & Betong i Växjö AB",
		OrgNumber:  "556677-8899",
		ValidUntil: now.AddDate(3, 0, 0).Truncate(24 * time.Hour),
		FacialJPEG: testPortrait(t),
	}
	return &fixture{p: p, dir: dir, now: now, data: d}
}

// openSealed decrypts what seal wrote (ASCII-armored age) with id.
func openSealed(t testing.TB, sealed []byte, id age.Identity) []byte {
	t.Helper()
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(sealed)), id)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// openSecrets decrypts Result.SealedSecrets with the development identity.
func (f *fixture) openSecrets(t testing.TB, sealed []byte) cardSecrets {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, supplierAgeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var id *age.X25519Identity
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "AGE-SECRET-KEY-") {
			if id, err = age.ParseX25519Identity(strings.TrimSpace(line)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var s cardSecrets
	if err := json.Unmarshal(openSealed(t, sealed, id), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func emuStock(s StockProfile) emulator.Stock {
	e := emulator.DefaultStock()
	e.PIN, e.PUK, e.MgmtAlg, e.MgmtKey = s.PIN, s.PUK, s.MgmtAlg, s.MgmtKey
	return e
}

func connect(t testing.TB, r *emulator.Reader) apdu.Card {
	t.Helper()
	c, err := r.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verify runs the station's verifier on card with a current, empty CRL of
// the fixture's CA.
func (f *fixture) verify(t testing.TB, card apdu.Card, pin string) (*Report, error) {
	t.Helper()
	der, err := f.p.IssueCRL(nil, 1, f.p.now())
	if err != nil {
		t.Fatal(err)
	}
	crl := func(context.Context, *x509.Certificate) ([]byte, error) { return der, nil }
	return f.p.Verifier(crl).Verify(context.Background(), card, pin)
}

// readBack reads every profile object of a personalized card under its PIN,
// as stored (53 L value).
func (f *fixture) readBack(t testing.TB, card apdu.Card, res *Result) map[uint][]byte {
	t.Helper()
	ctx := context.Background()
	s := &session{card: card, extended: true}
	if err := s.selectPIV(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.verifyPIN(ctx, f.openSecrets(t, res.SealedSecrets).PIN); err != nil {
		t.Fatal(err)
	}
	objs := map[uint][]byte{}
	for _, o := range written {
		c, err := s.getData(ctx, o.Tag)
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		objs[o.Tag] = c
	}
	return objs
}

// testCerts is the certificate profile of the test station.
var testCerts = CertProfile{PKIBaseURL: "http://pki.example.se"}

func recorder(got *[]byte) Record {
	return Record{UID: func(uid []byte) error { *got = append([]byte(nil), uid...); return nil }}
}

func TestPersonalizeThenVerify(t *testing.T) {
	aes128 := bytes.Repeat([]byte{0x4d}, 16)
	aes256 := bytes.Repeat([]byte{0x27}, 32)
	tests := []struct {
		name  string
		stock StockProfile
	}{
		{"3DES extended", DefaultStock()},
		{"3DES chained", StockProfile{PIN: "123456", PUK: "12345678", MgmtKey: emulator.DefaultManagementKey, MgmtAlg: 0x03}},
		{"AES-128", StockProfile{PIN: "123456", PUK: "12345678", MgmtKey: aes128, MgmtAlg: 0x08, ExtendedLength: true}},
		{"AES-192", StockProfile{PIN: "11223344", PUK: "87654321", MgmtKey: emulator.DefaultManagementKey, MgmtAlg: 0x0A, ExtendedLength: true}},
		{"AES-256 chained", StockProfile{PIN: "123456", PUK: "12345678", MgmtKey: aes256, MgmtAlg: 0x0C}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, tt.stock)
			reader := emulator.NewReader("test", emuStock(tt.stock), "")
			card := connect(t, reader)
			var recorded []byte
			res, err := f.p.Personalize(ctx, card, f.data, recorder(&recorded))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.UID, reader.Card().UID()) || !bytes.Equal(recorded, res.UID) {
				t.Errorf("UID %X, recorded %X, chip %X", res.UID, recorded, reader.Card().UID())
			}
			if res.APDUs == 0 || res.CertSerial == "" {
				t.Errorf("result %+v", res)
			}
			sec := f.openSecrets(t, res.SealedSecrets)
			if len(sec.PIN) != 6 || len(sec.PUK) != 8 || sec.PIN == tt.stock.PIN || sec.CardNumber != f.data.CardNumber {
				t.Errorf("sealed secrets: PIN %d digits, PUK %d digits, card %q", len(sec.PIN), len(sec.PUK), sec.CardNumber)
			}
			if bytes.Contains(res.SealedSecrets, []byte(sec.PIN)) {
				t.Error("sealed secrets contain the PIN in clear")
			}

			for _, pin := range []string{sec.PIN, ""} {
				rep, err := f.verify(t, card, pin)
				if err != nil {
					t.Fatal(err)
				}
				// Without the PIN: the two PIN objects, and the 9A key (generic
				// stock has no metadata to show the slot's public key), are
				// skipped, and a skipped check is not a pass.
				wantResult, wantSkipped := ResultPass, 0
				if pin == "" {
					wantResult, wantSkipped = ResultIncomplete, 3
				}
				if rep.Result != wantResult || len(rep.Failed()) > 0 || len(rep.Skipped()) != wantSkipped || rep.OK != (pin != "") {
					t.Fatalf("verify (PIN given: %v): %s, failed %+v, skipped %+v", pin != "", rep.Result, rep.Failed(), rep.Skipped())
				}
				want := Report{UID: hex.EncodeToString(res.UID), CardNumber: f.data.CardNumber, Holder: f.data.HolderName,
					Company: f.data.Company, ValidUntil: f.data.ValidUntil.Format(time.DateOnly),
					CardUUID: uuidString(f.data.CardUUID), CertSerial: res.CertSerial}
				got := *rep
				got.Checks, got.OK, got.Result = nil, false, ""
				if !reflect.DeepEqual(got, want) {
					t.Errorf("report\n got %+v\nwant %+v", got, want)
				}
			}
			rep, err := f.verify(t, card, "000000")
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.Failed()[0].Name != checkPIN {
				t.Errorf("verify with a wrong PIN: %+v", rep.Checks)
			}
		})
	}
}

// cardKeySession selects the PIV application and authenticates with the
// card's per-card management key, as the station (or whoever holds its
// master key) can.
func (f *fixture) cardKeySession(t *testing.T, card apdu.Card) *session {
	t.Helper()
	ctx := context.Background()
	s := &session{card: card, extended: true}
	if err := s.selectPIV(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := f.p.cardKey(f.data.CardUUID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.authenticate(ctx, k.Alg, k.Key); err != nil {
		t.Fatal(err)
	}
	return s
}

// tamper rewrites one object on a personalized card with its management
// key, as an insider with the master key could.
func (f *fixture) tamper(t *testing.T, card apdu.Card, tag uint, value []byte) {
	t.Helper()
	ctx := context.Background()
	s := f.cardKeySession(t, card)
	if err := s.putData(ctx, tag, container(value)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNamesTamperedObject(t *testing.T) {
	stock := DefaultStock()
	f := newFixture(t, stock)
	other := newFixture(t, stock) // another issuer's CA and content signer
	otherSigner := signer{other.p.pki.signerCert, other.p.pki.signerKey}
	fasc, _ := newFASCN(f.data.CardNumber)
	fb, _ := fasc.encode()
	otherPortrait := image.NewGray(image.Rect(0, 0, 120, 150))
	for i := range otherPortrait.Pix {
		otherPortrait.Pix[i] = byte(i * 7)
	}
	var otherJPEG bytes.Buffer
	if err := jpeg.Encode(&otherJPEG, otherPortrait, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		obj   object
		value func(t *testing.T, old []byte) []byte
	}{
		{"CCC of another card", objCCC, func(t *testing.T, _ []byte) []byte { return buildCCC([16]byte{1}) }},
		{"CHUID expiry changed", objCHUID, func(t *testing.T, old []byte) []byte {
			return bytes.Replace(old, []byte(f.data.ValidUntil.Format("20060102")), []byte("20991231"), 1)
		}},
		{"CHUID signed by another CA", objCHUID, func(t *testing.T, _ []byte) []byte {
			v, err := buildCHUID(otherSigner, fb, f.data.CardUUID, f.data.ValidUntil)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}},
		{"printed name changed", objPrinted, func(t *testing.T, _ []byte) []byte {
			d := f.data
			d.PrintName = "Mallory"
			return newPrintedInfo(d, "Test Issuer AB").encode()
		}},
		{"facial image replaced", objFacial, func(t *testing.T, _ []byte) []byte {
			v, err := buildFacial(otherSigner, otherJPEG.Bytes(), fb, f.data.CardUUID, f.now, f.data.ValidUntil)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}},
		{"certificate from another CA", objCert, func(t *testing.T, old []byte) []byte {
			c, err := parseCertObject(old)
			if err != nil {
				t.Fatal(err)
			}
			forged, err := other.p.pki.issueCardCert(slotPIVAuth, c.PublicKey, f.data, f.now)
			if err != nil {
				t.Fatal(err)
			}
			return buildCertObject(forged)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			reader := emulator.NewReader("test", emuStock(stock), "")
			card := connect(t, reader)
			var uid []byte
			res, err := f.p.Personalize(ctx, card, f.data, recorder(&uid))
			if err != nil {
				t.Fatal(err)
			}
			pin := f.openSecrets(t, res.SealedSecrets).PIN
			s := &session{card: card, extended: true}
			if err := s.selectPIV(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.verifyPIN(ctx, pin); err != nil {
				t.Fatal(err)
			}
			old, err := s.getData(ctx, tt.obj.Tag)
			if err != nil {
				t.Fatal(err)
			}
			oldV, _ := apdu.Unwrap(old, 0x53)
			f.tamper(t, card, tt.obj.Tag, tt.value(t, oldV))
			rep, err := f.verify(t, card, pin)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK {
				t.Fatalf("verify passed a card with a tampered %s", tt.obj)
			}
			var named bool
			for _, c := range rep.Failed() {
				named = named || c.Name == tt.obj.String()
			}
			if !named {
				t.Errorf("failed checks %+v do not name %s", rep.Failed(), tt.obj)
			}
		})
	}
}

func TestPersonalizeRefusals(t *testing.T) {
	stock := DefaultStock()
	errRecord := errors.New("database is locked")
	tests := []struct {
		name      string
		fault     emulator.Fault
		record    error
		wantErr   error // errors.Is target; nil = any error
		recorded  bool
		untouched bool // nothing written to the chip
	}{
		{"wrong management key", emulator.Fault{WrongMgmtKey: true}, nil, nil, false, true},
		{"recording the UID fails", emulator.Fault{}, errRecord, errRecord, true, true},
		{"memory full", emulator.Fault{MemoryFull: true}, nil, ErrSpoiled, true, false},
		{"card removed mid-write", emulator.Fault{RemoveAfterWrites: 3}, nil, apdu.ErrCardRemoved, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, stock)
			reader := emulator.NewReader("test", emuStock(stock), "")
			reader.InjectNext(tt.fault)
			card := connect(t, reader)
			recorded := false
			_, err := f.p.Personalize(ctx, card, f.data, Record{UID: func([]byte) error { recorded = true; return tt.record }})
			if err == nil {
				t.Fatal("Personalize succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if recorded != tt.recorded {
				t.Errorf("recordUID called: %v, want %v", recorded, tt.recorded)
			}
			if tt.untouched {
				st, err := reader.Card().MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				blank := emulator.New(emuStock(stock))
				if n := objectCount(t, st); n != objectCount(t, mustMarshal(t, blank)) {
					t.Errorf("chip holds %d objects after a refused personalization", n)
				}
				var keys struct{ Keys map[string]json.RawMessage }
				if err := json.Unmarshal(st, &keys); err != nil {
					t.Fatal(err)
				}
				if _, ok := keys.Keys["9a"]; ok {
					t.Error("a key was generated in slot 9A")
				}
			}
		})
	}
}

func mustMarshal(t *testing.T, c *emulator.Card) []byte {
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// objectCount counts the data objects in the emulator's exported state.
func objectCount(t *testing.T, state []byte) int {
	t.Helper()
	var st struct {
		Objects map[string]json.RawMessage
	}
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatalf("emulator state is not JSON with Objects: %v", err)
	}
	return len(st.Objects)
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	stock := DefaultStock()
	f := newFixture(t, stock)
	reader := emulator.NewReader("test", emuStock(stock), t.TempDir())
	// Writes: management key, the two keys, the two certificates, CHUID,
	// then the card is pulled.
	reader.InjectNext(emulator.Fault{RemoveAfterWrites: 6})
	var uid []byte
	if _, err := f.p.Personalize(ctx, connect(t, reader), f.data, recorder(&uid)); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("first attempt: %v", err)
	}
	// The half-written card is back in the slot (as after a station crash).
	card := connect(t, reader)
	if _, err := f.p.Personalize(ctx, card, f.data, recorder(new([]byte))); !errors.Is(err, ErrNotBlank) {
		t.Fatalf("another order on the half-written card: %v, want ErrNotBlank", err)
	}
	d := f.data
	d.ExpectedUID = []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	if _, err := f.p.Personalize(ctx, card, d, recorder(new([]byte))); !errors.Is(err, ErrNotBlank) {
		t.Fatalf("resume expecting another chip: %v, want ErrNotBlank", err)
	}
	d.ExpectedUID = uid
	res, err := f.p.Personalize(ctx, card, d, recorder(new([]byte)))
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	pin := f.openSecrets(t, res.SealedSecrets).PIN
	if rep, err := f.verify(t, card, pin); err != nil || !rep.OK {
		t.Fatalf("verify after resume: %v %+v", err, rep)
	}
	// Once PIN and PUK are set the transport values are gone: resuming
	// again cannot produce a card with known secrets.
	before := mustMarshal(t, reader.Card())
	if _, err := f.p.Personalize(ctx, card, d, recorder(new([]byte))); !errors.Is(err, ErrSpoiled) {
		t.Fatalf("resume of a finished card: %v, want ErrSpoiled", err)
	}
	var st0, st1 struct{ Objects map[string][]byte }
	if err := json.Unmarshal(before, &st0); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustMarshal(t, reader.Card()), &st1); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st0.Objects, st1.Objects) {
		t.Error("the refused resume rewrote data objects")
	}
}

// writeLog records the instruction of every write APDU sent to a card.
type writeLog struct {
	apdu.Card
	ins []byte
}

func (w *writeLog) Transmit(ctx context.Context, raw []byte) ([]byte, error) {
	if len(raw) > 1 && raw[0]&^0x10 == 0 {
		switch raw[1] {
		case 0xDB, 0x47, 0x24, 0x2C, 0xFF:
			w.ins = append(w.ins, raw[1])
		}
	}
	return w.Card.Transmit(ctx, raw)
}

// A station that dies before any write APDU resumes the same chip: before
// the management key change with the transport key, after it with the
// per-card key. Once the PIN is changed the transport PIN is gone and the
// chip can only be spoiled, never finished with unknown secrets.
func TestResumeAfterEveryWrite(t *testing.T) {
	ctx := context.Background()
	stock := DefaultStock()
	f := newFixture(t, stock)
	log := &writeLog{Card: connect(t, emulator.NewReader("count", emuStock(stock), ""))}
	if _, err := f.p.Personalize(ctx, log, f.data, Record{}); err != nil {
		t.Fatal(err)
	}
	pinAt := bytes.IndexByte(log.ins, 0x24)
	if log.ins[0] != 0xFF || pinAt < 0 {
		t.Fatalf("write sequence % X: want the key change first and a PIN change", log.ins)
	}
	for n := range len(log.ins) {
		t.Run(fmt.Sprintf("pulled before write %d (INS %02X)", n+1, log.ins[n]), func(t *testing.T) {
			reader := emulator.NewReader("test", emuStock(stock), "")
			card := connect(t, reader)
			reader.Card().FailAfterWrites(n)
			var uid []byte
			if _, err := f.p.Personalize(ctx, card, f.data, recorder(&uid)); !errors.Is(err, apdu.ErrCardRemoved) {
				t.Fatalf("first run: %v, want the card removed", err)
			}
			card = connect(t, reader)
			d := f.data
			d.ExpectedUID = uid
			res, err := f.p.Personalize(ctx, card, d, recorder(new([]byte)))
			if n > pinAt {
				if !errors.Is(err, ErrSpoiled) {
					t.Fatalf("resume after the PIN change: %v, want ErrSpoiled", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			rep, err := f.verify(t, card, f.openSecrets(t, res.SealedSecrets).PIN)
			if err != nil || !rep.OK {
				t.Fatalf("verify after resume: %v %+v", err, rep.Failed())
			}
			s := &session{card: card, extended: true}
			if err := s.selectPIV(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.refuses(ctx, mgmtKey{stock.MgmtAlg, stock.MgmtKey}, "the transport key"); err != nil {
				t.Fatal(err)
			}
			f.cardKeySession(t, card)
		})
	}
}

func TestStockWithAnotherTransportPIN(t *testing.T) {
	stock := DefaultStock()
	f := newFixture(t, stock)
	es := emuStock(stock)
	es.PIN = "654321"
	reader := emulator.NewReader("test", es, "")
	_, err := f.p.Personalize(context.Background(), connect(t, reader), f.data, Record{})
	var auth *apdu.AuthError
	if !errors.Is(err, ErrSpoiled) || !errors.As(err, &auth) {
		t.Fatalf("error %v, want ErrSpoiled with the card's 63Cx", err)
	}
}

func TestCardDataValidation(t *testing.T) {
	f := newFixture(t, DefaultStock())
	tests := []struct {
		name string
		edit func(*CardData)
		want string
	}{
		{"no card number", func(d *CardData) { d.CardNumber = "" }, "card number"},
		{"no photo", func(d *CardData) { d.FacialJPEG = nil }, "facial image"},
		{"expired", func(d *CardData) { d.ValidUntil = f.now.Add(-time.Hour) }, "not in the future"},
		{"photo not JPEG", func(d *CardData) { d.FacialJPEG = []byte("GIF89a") }, "not a JPEG"},
		{"card number too long", func(d *CardData) { d.CardNumber = "BB-1234-5678901" }, "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader := emulator.NewReader("test", emulator.DefaultStock(), "")
			d := f.data
			tt.edit(&d)
			_, err := f.p.Personalize(context.Background(), connect(t, reader), d, Record{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrCardData) {
				t.Fatalf("error %v, want ErrCardData mentioning %q", err, tt.want)
			}
			if n := objectCount(t, mustMarshal(t, reader.Card())); n != objectCount(t, mustMarshal(t, emulator.New(emulator.DefaultStock()))) {
				t.Error("bad card data wrote to the chip")
			}
		})
	}
}

func BenchmarkPersonalize(b *testing.B) {
	for _, bc := range []struct {
		name  string
		stock StockProfile
	}{
		{"extended", DefaultStock()},
		{"chained", StockProfile{PIN: "123456", PUK: "12345678", MgmtKey: emulator.DefaultManagementKey, MgmtAlg: 0x03}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, bc.stock)
			reader := emulator.NewReader("bench", emuStock(bc.stock), "")
			ctx := context.Background()
			apdus := 0
			b.ReportAllocs()
			for b.Loop() {
				card, err := reader.Connect(ctx)
				if err != nil {
					b.Fatal(err)
				}
				res, err := f.p.Personalize(ctx, card, f.data, Record{})
				if err != nil {
					b.Fatal(err)
				}
				apdus += res.APDUs
				if err := reader.Eject(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(apdus)/float64(b.N), "APDUs/card")
		})
	}
}

func TestVerifyDetectsReplacedKey(t *testing.T) {
	ctx := context.Background()
	stock := DefaultStock()
	f := newFixture(t, stock)
	es := emuStock(stock)
	es.Yubico = true // its key metadata shows the slot's public key without the PIN
	reader := emulator.NewReader("test", es, "")
	card := connect(t, reader)
	res, err := f.p.Personalize(ctx, card, f.data, Record{})
	if err != nil {
		t.Fatal(err)
	}
	pin := f.openSecrets(t, res.SealedSecrets).PIN
	s := f.cardKeySession(t, card)
	if _, err := s.generateP256(ctx, slotPIVAuth); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", pin} {
		rep, err := f.verify(t, card, p)
		if err != nil {
			t.Fatal(err)
		}
		failed := rep.Failed()
		if rep.OK || len(failed) != 1 || failed[0].Name != checkKey {
			t.Errorf("PIN given %v: failed checks %+v, want only %q", p != "", failed, checkKey)
		}
	}
}

func TestMaxObjectRefusedBeforeWriting(t *testing.T) {
	stock := DefaultStock()
	stock.MaxObject = 700 // not even a thumbnail portrait fits with its CBEFF header and signature
	f := newFixture(t, stock)
	reader := emulator.NewReader("test", emuStock(stock), "")
	recorded := false
	_, err := f.p.Personalize(context.Background(), connect(t, reader), f.data, Record{UID: func([]byte) error { recorded = true; return nil }})
	if err == nil || errors.Is(err, ErrSpoiled) || !errors.Is(err, ErrCardData) || !strings.Contains(err.Error(), "does not fit in") {
		t.Fatalf("error %v, want ErrCardData (not spoiled) saying the portrait does not fit", err)
	}
	if recorded {
		t.Error("UID recorded for a card that was never written")
	}
}

// Every object stays within SP 800-73-4's maxima and the stock's own limit:
// a large portrait is recompressed to fit, and yubikey stock (whose
// emulator refuses objects over 3,052 bytes) takes the whole profile.
func TestObjectSizesFitStock(t *testing.T) {
	large := smallPortrait(t, 300, 380, 95)
	for _, name := range StockNames() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stock, err := Stock(name)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, stock)
			f.data.FacialJPEG = large
			es, err := emulator.StockNamed(name)
			if err != nil {
				t.Fatal(err)
			}
			reader := emulator.NewReader("test", es, "")
			card := connect(t, reader)
			res, err := f.p.Personalize(ctx, card, f.data, Record{})
			if err != nil {
				t.Fatal(err)
			}
			objs := f.readBack(t, card, res)
			total := 0
			for _, o := range written {
				if err := stock.checkSize(o, objs[o.Tag]); err != nil {
					t.Error(err)
				}
				total += len(objs[o.Tag])
				t.Logf("%-32s %6d bytes", o, len(objs[o.Tag]))
			}
			t.Logf("%-32s %6d bytes (portrait given: %d bytes)", "all objects", total, len(large))
			if len(large)+200 < 12704 {
				t.Fatalf("the test portrait (%d bytes) is too small to need recompression", len(large))
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	stock := DefaultStock()
	yk, _ := Stock(StockYubiKey)
	tests := []struct {
		name  string
		stock StockProfile
		obj   object
		value []byte
		want  *SizeError
	}{
		{"facial image at the maximum", stock, objFacial, tlvs(apdu.TLV(0xBC, make([]byte, 12704)), apdu.TLV(0xFE, nil)), nil},
		{"facial image one byte over", stock, objFacial, tlvs(apdu.TLV(0xBC, make([]byte, 12705)), apdu.TLV(0xFE, nil)), &SizeError{Element: 0xBC, Size: 12705, Max: 12704}},
		{"certificate over 1858", stock, objCert, tlvs(apdu.TLV(0x70, make([]byte, 1859)), apdu.TLV(0x71, []byte{0})), &SizeError{Element: 0x70, Size: 1859, Max: 1858}},
		{"card authentication certificate over 1858", stock, objCardAuthCert, apdu.TLV(0x70, make([]byte, 2000)), &SizeError{Element: 0x70, Size: 2000, Max: 1858}},
		{"CHUID signature over 3200", stock, objCHUID, apdu.TLV(0x3E, make([]byte, 3201)), &SizeError{Element: 0x3E, Size: 3201, Max: 3200}},
		{"security object over 1298", stock, objSecurity, apdu.TLV(0xBB, make([]byte, 1299)), &SizeError{Element: 0xBB, Size: 1299, Max: 1298}},
		{"printed name over 125", stock, objPrinted, apdu.TLV(0x01, make([]byte, 126)), &SizeError{Element: 0x01, Size: 126, Max: 125}},
		{"yubikey object over 3052", yk, objFacial, apdu.TLV(0xBC, make([]byte, 3100)), &SizeError{Size: 3108, Max: 3052}},
		{"yubikey object at 3052", yk, objFacial, apdu.TLV(0xBC, make([]byte, 3044)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.stock.checkSize(tt.obj, container(tt.value))
			var se *SizeError
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("unexpected %v", err)
			case tt.want == nil:
			case !errors.As(err, &se):
				t.Fatalf("error %v, want a SizeError", err)
			case se.Element != tt.want.Element || se.Size != tt.want.Size || se.Max != tt.want.Max:
				t.Fatalf("got %+v, want %+v", se, tt.want)
			}
		})
	}
}

func TestVerifyBlankCard(t *testing.T) {
	f := newFixture(t, DefaultStock())
	reader := emulator.NewReader("test", emulator.DefaultStock(), "")
	rep, err := f.verify(t, connect(t, reader), "123456")
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatal("a blank card passed verification")
	}
	failed := map[string]bool{}
	for _, c := range rep.Failed() {
		failed[c.Name] = true
	}
	for _, o := range written {
		if !failed[o.String()] {
			t.Errorf("missing %s not reported: %+v", o, rep.Checks)
		}
	}
}

// The station's clock is injected; the card must verify at that time and
// stop verifying once it has expired.
func TestInjectedClock(t *testing.T) {
	ctx := context.Background()
	stock := DefaultStock()
	f := newFixtureAt(t, stock, time.Date(2031, 3, 14, 9, 0, 0, 0, time.UTC))
	reader := emulator.NewReader("test", emuStock(stock), "")
	card := connect(t, reader)
	res, err := f.p.Personalize(ctx, card, f.data, Record{})
	if err != nil {
		t.Fatal(err)
	}
	pin := f.openSecrets(t, res.SealedSecrets).PIN
	later := f.data.ValidUntil.AddDate(0, 0, 2)
	p, err := New(Config{PKIDir: f.dir, Certs: testCerts, Issuer: "Test Issuer AB", Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Verify(ctx, card, pin)
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]string{}
	for _, c := range rep.Failed() {
		failed[c.Name] = c.Detail
	}
	if !strings.Contains(failed[objCHUID.String()], "expired") || !strings.Contains(failed[objCert.String()], "expired") {
		t.Errorf("expired card: failed checks %v, want the CHUID and the certificate reported expired", failed)
	}
}

// shortOnly is a card (or reader) without extended-length support.
type shortOnly struct {
	apdu.Card
	refused int
}

func (c *shortOnly) Transmit(ctx context.Context, raw []byte) ([]byte, error) {
	if len(raw) > 5 && raw[4] == 0 {
		c.refused++
		return []byte{0x67, 0x00}, nil
	}
	return c.Card.Transmit(ctx, raw)
}

func TestExtendedLengthFallsBackToChaining(t *testing.T) {
	ctx := context.Background()
	stock := DefaultStock() // configured for extended length
	f := newFixture(t, stock)
	reader := emulator.NewReader("test", emuStock(stock), "")
	card := &shortOnly{Card: connect(t, reader)}
	res, err := f.p.Personalize(ctx, card, f.data, Record{})
	if err != nil {
		t.Fatal(err)
	}
	if card.refused != 1 {
		t.Errorf("%d extended APDUs refused, want 1 (then short APDUs only)", card.refused)
	}
	rep, err := f.verify(t, card, f.openSecrets(t, res.SealedSecrets).PIN)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func TestOpenReader(t *testing.T) {
	r, err := OpenReader("sim", t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != SimReaderName {
		t.Errorf("name %q", r.Name())
	}
	if _, ok := r.(Ejector); !ok {
		t.Error("the simulated reader cannot eject")
	}
	for _, spec := range []string{"", "simulator", "usb:0"} {
		if _, err := OpenReader(spec, "", ""); err == nil || !strings.Contains(err.Error(), "sim, sim:apdu-delay=DURATION, pcsc or pcsc:NAME") {
			t.Errorf("OpenReader(%q): %v", spec, err)
		}
	}
	// No pcscd here, or no such reader: an error and no reader to Close.
	if r, err := OpenReader("pcsc:no-such-reader-anywhere", "", ""); err == nil || r != nil {
		t.Errorf("OpenReader(pcsc:no-such-reader-anywhere) = %v, %v; want nil and an error", r, err)
	}
	for _, spec := range []string{"sim:apdu-delay=fast", "sim:apdu-delay=-1ms", "sim:apdu-delay=2s"} {
		if _, err := OpenReader(spec, "", ""); err == nil || !strings.Contains(err.Error(), "e.g. sim:apdu-delay=20ms") {
			t.Errorf("OpenReader(%q): %v", spec, err)
		}
	}
	// The slow simulator still ejects and takes at least its delay per APDU.
	slow, err := OpenReader("sim:apdu-delay=30ms", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := slow.(Ejector); !ok {
		t.Error("the slow simulated reader cannot eject")
	}
	card, err := slow.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := ReadUID(t.Context(), card); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("an APDU took %v, want at least the 30ms delay", d)
	}
}
