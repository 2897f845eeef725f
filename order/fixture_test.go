package order

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

var update = flag.Bool("update", false, "rewrite testdata/valid.json")

// fixtureNow is the intake time the fixture is valid at: its approval is from
// the day before, its valid_until 5 years minus a day ahead.
var fixtureNow = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

const fixturePath = "testdata/valid.json"

// headerCheck stands in for imaging's header checks (another package): it
// reads only the image header, as they do, and enforces a minimum size.
func headerCheck(minW, minH int) func([]byte) error {
	return func(b []byte) error {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if cfg.Width < minW || cfg.Height < minH {
			return errTooSmall
		}
		return nil
	}
}

var errTooSmall = errorString("image too small")

type errorString string

func (e errorString) Error() string { return string(e) }

func fixtureChecks() Checks {
	return Checks{Now: fixtureNow, Photo: headerCheck(300, 410), Logo: headerCheck(354, 118)}
}

// gradientPNG draws a small gray gradient: a real, decodable PNG of the given
// size that compresses to a few kilobytes.
func gradientPNG(t testing.TB, w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{Y: uint8(255 - (x+y)*128/(w+h))})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func fixtureOrder(t testing.TB) *Order {
	return &Order{
		ID: "sup-2026-000123", CardType: CardID06,
		Holder: Holder{FirstName: "Anna", LastName: "Łukasz-Svensson", PrintName: "Anna Łukasz-Svensson",
			Nationality: "SE", BirthDate: "1985-04-12", IDNumber: "19850412-1230",
			Email: "anna@example.se", Phone: "+46701234567"},
		Company:    Company{Name: "Bygg AB", OrgNumber: "556677-8899", Logo: gradientPNG(t, 354, 118)},
		ValidUntil: "2031-11-22",
		Photo:      gradientPNG(t, 300, 410),
		Delivery:   Delivery{Name: "Bygg AB", Street: "Storgatan 1", PostalCode: "111 22", City: "Stockholm", Country: "SE"},
		Approvals:  []Approval{{Kind: KindHolder, Method: MethodBankID, At: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}},
	}
}

// TestValidFixture keeps testdata/valid.json (reused by the station's tests)
// decodable, valid and ready for production. Regenerate with -update.
func TestValidFixture(t *testing.T) {
	if *update {
		b, err := json.Marshal(fixtureOrder(t), jsontext.Multiline(true))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixturePath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := loadFixture(t)
	if err := o.Validate(fixtureChecks()); err != nil {
		t.Fatalf("fixture does not validate: %v", err)
	}
	if !o.ReadyForProduction() {
		t.Error("fixture is not ready for production")
	}
}

func loadFixture(t testing.TB) *Order {
	t.Helper()
	b, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Decode(b)
	if err != nil {
		t.Fatalf("decode fixture: %v", err)
	}
	return o
}
