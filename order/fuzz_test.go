package order

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/go-json-experiment/json"
)

// FuzzDecode feeds arbitrary bodies to Decode and Validate: they must never
// panic, must fail only with a *ValidationError, and an order they accept
// must survive a round trip through JSON unchanged.
func FuzzDecode(f *testing.F) {
	valid, err := os.ReadFile(fixturePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"id":"a","zz":1}`, `{"photo":"@@"}`, `{"approvals":[{"at":"x"}]}`,
		`{"holder":{"nationality":"PL","id_number":"44051401359","birth_date":"1944-05-14"}}`,
		`{"holder":{"nationality":"FI","id_number":"131052-308T"}}`,
		`{"holder":{"nationality":"NO","id_number":"52048512410"}}`,
		`{"holder":{"nationality":"DK","id_number":"070761-4285"}}`,
		`{"holder":{"nationality":"EE","id_number":"37605030299"}}`,
		`{"company":{"org_number":"640823-3234"}}`, `{"valid_until":"2031-02-29"}`, `{"id":"a"} {}`,
	} {
		f.Add([]byte(s))
	}
	checks := fixtureChecks()
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := Decode(body)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 || o != nil {
				t.Fatalf("Decode: %T %v with order %v", err, err, o != nil)
			}
			return
		}
		if err := o.Validate(checks); err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("Validate: %T %v", err, err)
			}
		}
		o.ReadyForProduction()
		o.ValidUntilDate(fixtureNow)
		again, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		o2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if back, _ := json.Marshal(o2); !bytes.Equal(back, again) {
			t.Fatalf("round trip changed the order:\n%s\n%s", again, back)
		}
	})
}

// BenchmarkDecodeValidate measures intake of an order with a 300 KB photo:
// strict decoding (base64 included) and every rule, with header checks of
// photo and logo.
func BenchmarkDecodeValidate(b *testing.B) {
	o := fixtureOrder(b)
	o.Photo = noiseJPEG(b, 300<<10)
	body, err := json.Marshal(o)
	if err != nil {
		b.Fatal(err)
	}
	checks := fixtureChecks()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		o, err := Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Validate(checks); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(o.Photo))/1024, "photo-KB")
}

// noiseJPEG encodes random gray noise as a JPEG of at least size bytes, the
// worst case for compression and so a realistic stand-in for a large photo.
func noiseJPEG(b *testing.B, size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	for side := 300; ; side += 10 {
		img := image.NewGray(image.Rect(0, 0, side, side*4/3))
		for i := range img.Pix {
			img.Pix[i] = uint8(r.IntN(256))
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		if buf.Len() >= size {
			return buf.Bytes()
		}
	}
}
