package printer

import (
	"flag"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// photosDir finds shared/testdata/photos by walking up from the package.
func photosDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		for _, cand := range []string{filepath.Join(dir, "shared", "testdata", "photos"), filepath.Join(dir, "..", "shared", "testdata", "photos")} {
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				return cand
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("STATION_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("shared/testdata/photos not found above the package directory")
	}
	t.Skip("shared/testdata/photos not found; skipping tests that need a real portrait")
	return ""
}

// testPortrait stands in for the photo stage: a real portrait, centre-cropped
// to 300:380 and scaled to 300x380 gray.
func testPortrait(t testing.TB) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join(photosDir(t), "dev", "pass_london_001_03.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := src.Bounds()
	cw := b.Dy() * 300 / 380
	crop := image.Rect(b.Min.X+(b.Dx()-cw)/2, b.Min.Y, b.Min.X+(b.Dx()-cw)/2+cw, b.Max.Y)
	dst := image.NewGray(image.Rect(0, 0, 300, 380))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, crop, xdraw.Src, nil)
	return dst
}

// testLogo draws a 354x118 two-colour logo with transparent surroundings.
func testLogo() image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, 354, 118))
	for y := 10; y < 108; y++ {
		for x := 10; x < 344; x++ {
			switch {
			case x < 118:
				img.Set(x, y, color.NRGBA{R: 200, G: 30, B: 30, A: 255})
			case y > 40 && y < 78:
				img.Set(x, y, color.NRGBA{R: 20, G: 60, B: 160, A: 255})
			}
		}
	}
	return img
}

// syntheticPortrait is a drawn 300x380 gray "head and shoulders" for the
// golden files, which must not contain a real person's photo.
func syntheticPortrait() image.Image {
	img := image.NewGray(image.Rect(0, 0, 300, 380))
	for y := 0; y < 380; y++ {
		for x := 0; x < 300; x++ {
			v := 225 - y/20 // light background, slightly darker at the bottom
			dx, dy := float64(x-150)/80, float64(y-165)/105
			if dx*dx+dy*dy < 1 {
				v = 150 + int(60*(1-dx*dx-dy*dy)) // head
			}
			sx, sy := float64(x-150)/150, float64(y-420)/140
			if sx*sx+sy*sy < 1 {
				v = 90 // shoulders
			}
			img.SetGray(x, y, color.Gray{Y: uint8(v)})
		}
	}
	return img
}

// goldenCard is testCard with the synthetic portrait.
func goldenCard() Card {
	return Card{
		CardType:   "id06",
		PrintName:  "Anna Łukasz-Svensson",
		Company:    "Bygg & Betong i Norr AB",
		OrgNumber:  "556677-8899",
		CardNumber: "BB-1234-567890",
		Issuer:     "Kortverkstan Nord AB",
		ValidUntil: time.Date(2031, 11, 22, 0, 0, 0, 0, time.UTC),
		Portrait:   syntheticPortrait(),
		Logo:       testLogo(),
	}
}

// testCard is goldenCard with a real portrait (never written to testdata).
func testCard(t testing.TB) Card {
	c := goldenCard()
	c.Portrait = testPortrait(t)
	return c
}
