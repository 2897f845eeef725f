package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exifAPP1 builds a JPEG APP1 segment holding a little- or big-endian TIFF
// block whose IFD0 has only the orientation tag.
func exifAPP1(orientation int, bigEndian bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	tiff := []byte("II")
	if bigEndian {
		bo, tiff = binary.BigEndian, []byte("MM")
	}
	tiff = bo.AppendUint16(tiff, 42)
	tiff = bo.AppendUint32(tiff, 8)
	tiff = bo.AppendUint16(tiff, 1)      // one entry
	tiff = bo.AppendUint16(tiff, 0x0112) // Orientation
	tiff = bo.AppendUint16(tiff, 3)      // SHORT
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, uint16(orientation))
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	body := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(body)+2))
	return append(seg, body...)
}

// withPNGEXIF inserts an eXIf chunk (the TIFF block of exifAPP1) after IHDR.
func withPNGEXIF(p []byte, orientation int) []byte {
	tiff := exifAPP1(orientation, false)[4+6:] // drop marker, length and "Exif\0\0"
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(tiff)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, tiff...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	const ihdrEnd = 8 + 25
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

// withEXIF inserts an EXIF orientation right after SOI.
func withEXIF(jpg []byte, orientation int, bigEndian bool) []byte {
	out := append([]byte{}, jpg[:2]...)
	out = append(out, exifAPP1(orientation, bigEndian)...)
	return append(out, jpg[2:]...)
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeaderOnly is a PNG signature and IHDR claiming w x h, without data:
// enough for the header check, which must not need the pixels.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	chunk := binary.BigEndian.AppendUint32(nil, 13)
	chunk = append(chunk, "IHDR"...)
	chunk = append(chunk, ihdr...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return append(append([]byte{}, pngSignature...), chunk...)
}

func gray(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	return img
}

func TestCheckPhotoHeader(t *testing.T) {
	big := make([]byte, MaxFileBytes+1)
	copy(big, encodeJPEG(t, gray(8, 8)))
	tests := []struct {
		name string
		data []byte
		code string // "" = accepted
	}{
		{"jpeg ok", encodeJPEG(t, gray(300, 410)), ""},
		{"png ok", encodePNG(t, gray(300, 410)), ""},
		{"jpeg too narrow", encodeJPEG(t, gray(299, 500)), CodeResolutionTooLow},
		{"png too low", encodePNG(t, gray(400, 409)), CodeResolutionTooLow},
		{"landscape rotated upright by EXIF 6", withEXIF(encodeJPEG(t, gray(410, 300)), 6, false), ""},
		{"landscape rotated by EXIF 8, big-endian", withEXIF(encodeJPEG(t, gray(410, 300)), 8, true), ""},
		{"portrait turned sideways by EXIF 5", withEXIF(encodeJPEG(t, gray(300, 410)), 5, false), CodeResolutionTooLow},
		{"invalid EXIF orientation ignored", withEXIF(encodeJPEG(t, gray(300, 410)), 9, false), ""},
		{"PNG landscape rotated upright by eXIf 6", withPNGEXIF(encodePNG(t, gray(410, 300)), 6), ""},
		{"PNG portrait turned sideways by eXIf 8", withPNGEXIF(encodePNG(t, gray(300, 410)), 8), CodeResolutionTooLow},
		{"over 50 megapixels", pngHeaderOnly(10000, 5001), CodeTooLarge},
		{"absurd PNG size", pngHeaderOnly(1<<30, 1), CodeTooLarge},
		{"over 20 MB", big, CodeTooLarge},
		{"empty", nil, CodeUnreadable},
		{"text", []byte("hello, this is not a photo"), CodeUnreadable},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), CodeUnreadable},
		{"jpeg without frame", []byte{0xFF, 0xD8, 0xFF, 0xD9}, CodeUnreadable},
		{"jpeg truncated in segment", encodeJPEG(t, gray(300, 410))[:20], CodeUnreadable},
		{"png truncated", encodePNG(t, gray(300, 410))[:12], CodeUnreadable},
		{"png zero width", pngHeaderOnly(0, 500), CodeUnreadable},
		{"jpeg cut short", encodeJPEG(t, gray(300, 410))[:300], CodeUnreadable},
		{"png without IEND", encodePNG(t, gray(300, 410))[:60], CodeUnreadable},
		// 300 MB of coefficients for libjpeg, more than a photo may use.
		{"50 MP progressive JPEG 4:4:4", progressiveBomb(1), CodeTooLarge},
		{"50 MP progressive JPEG 4:2:0", progressiveBomb(2), map[bool]string{true: "", false: CodeTooLarge}[turboAvailable]}, // image/jpeg keeps 4 bytes per coefficient
		{"50 MP 16-bit PNG, decoded streaming", pngBomb(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPhotoHeader(tt.data)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var he *HeaderError
			if !errors.As(err, &he) {
				t.Fatalf("got %v, want *HeaderError %s", err, tt.code)
			}
			if he.Code != tt.code {
				t.Fatalf("code %s (%s), want %s", he.Code, he.Message, tt.code)
			}
			if he.Message == "" {
				t.Fatal("empty message")
			}
		})
	}
}

func TestCheckLogoHeader(t *testing.T) {
	if err := CheckLogoHeader(encodePNG(t, gray(354, 118))); err != nil {
		t.Fatalf("354x118 rejected: %v", err)
	}
	var he *HeaderError
	if err := CheckLogoHeader(encodePNG(t, gray(353, 200))); !errors.As(err, &he) || he.Code != CodeResolutionTooLow {
		t.Fatalf("353 px wide logo: %v", err)
	}
	if err := CheckLogoHeader([]byte("%PDF-1.4")); !errors.As(err, &he) || he.Code != CodeUnreadable {
		t.Fatalf("PDF logo: %v", err)
	}
}

func TestJPEGQualityEstimate(t *testing.T) {
	for _, q := range []int{5, 25, 50, 75, 95} {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, gray(16, 16), &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		got := jpegQuality(b.Bytes())
		// Neighbouring low qualities can share rounded tables.
		if d := got - float64(q); d < -1 || d > 1 {
			t.Errorf("quality %d estimated as %.1f", q, got)
		}
	}
	if got := jpegQuality(encodePNG(t, gray(4, 4))); got != 0 {
		t.Errorf("PNG has quality %v", got)
	}
}

// quadrant paints an upright test pattern: a red top-left quadrant on blue,
// so that every flip and rotation is distinguishable.
func quadrant(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{0, 0, 255, 255}
			if x < w/2 && y < h/2 {
				c = color.RGBA{255, 0, 0, 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// storedFor returns the image a camera stores so that applying EXIF
// orientation o shows upright: the inverse of the orientation transform.
func storedFor(up *image.RGBA, o int) *image.RGBA {
	b := up.Bounds()
	w, h := b.Dx(), b.Dy()
	sw, sh := w, h
	if o >= 5 {
		sw, sh = h, w
	}
	st := image.NewRGBA(image.Rect(0, 0, sw, sh))
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			// Where stored pixel (x, y) lands after orientation o, as in
			// rgb.orient.
			var dx, dy int
			switch o {
			case 1:
				dx, dy = x, y
			case 2:
				dx, dy = sw-1-x, y
			case 3:
				dx, dy = sw-1-x, sh-1-y
			case 4:
				dx, dy = x, sh-1-y
			case 5:
				dx, dy = y, x
			case 6:
				dx, dy = sh-1-y, x
			case 7:
				dx, dy = sh-1-y, sw-1-x
			case 8:
				dx, dy = y, sw-1-x
			}
			st.Set(x, y, up.At(dx, dy))
		}
	}
	return st
}

// TestDecodeOrientation decodes every EXIF orientation through every
// decoder path (libjpeg-turbo at 1/1 and 1/2, pure-Go JPEG, PNG) and checks
// that the red quadrant ends up top-left.
func TestDecodeOrientation(t *testing.T) {
	up := quadrant(64, 48)
	for o := 1; o <= 8; o++ {
		st := storedFor(up, o)
		jpg := withEXIF(encodeJPEG(t, st), o, o%2 == 0)
		pngData := withPNGEXIF(encodePNG(t, st), o)
		for _, tc := range []struct {
			name  string
			data  []byte
			denom int
			pure  bool
		}{
			{"jpeg", jpg, 1, false},
			{"jpeg-half", jpg, 2, false},
			{"jpeg-pure-go", jpg, 1, true},
			{"png", pngData, 1, false},
		} {
			h, herr := parseHeader(tc.data)
			if herr != nil {
				t.Fatalf("o=%d %s: %v", o, tc.name, herr)
			}
			decode := decodeScaled
			if tc.pure {
				decode = decodeGo
			}
			m, err := decode(tc.data, h, tc.denom)
			if err != nil {
				t.Fatalf("o=%d %s: %v", o, tc.name, err)
			}
			if m.w != 64/tc.denom || m.h != 48/tc.denom {
				t.Fatalf("o=%d %s: size %dx%d", o, tc.name, m.w, m.h)
			}
			at := func(x, y int) (uint8, uint8) { i := 3 * (y*m.w + x); return m.pix[i], m.pix[i+2] }
			if r, b := at(m.w/4, m.h/4); r < 200 || b > 60 {
				t.Errorf("o=%d %s: top-left is r=%d b=%d, want red", o, tc.name, r, b)
			}
			if r, b := at(3*m.w/4, 3*m.h/4); r > 60 || b < 200 {
				t.Errorf("o=%d %s: bottom-right is r=%d b=%d, want blue", o, tc.name, r, b)
			}
		}
	}
}

// decodeGo decodes a JPEG with image/jpeg, as builds without cgo do.
func decodeGo(data []byte, h header, denom int) (*rgb, error) {
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	w, ht := scaledSize(h.w, h.h, denom)
	return scaleImage(img, denom, image.Rect(0, 0, w, ht)).orient(h.orientation), nil
}

// TestDecodeFormats covers the pixel formats uploads arrive in.
func TestDecodeFormats(t *testing.T) {
	g16 := image.NewGray16(image.Rect(0, 0, 40, 30))
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, 40, 30))
	pal := image.NewPaletted(image.Rect(0, 0, 40, 30), color.Palette{color.White, color.Black})
	trans := image.NewNRGBA(image.Rect(0, 0, 40, 30)) // fully transparent: must come out white
	grayJPEGSource := image.NewGray(image.Rect(0, 0, 40, 30))
	for i := range grayJPEGSource.Pix {
		grayJPEGSource.Pix[i] = 100
	}
	for i := range g16.Pix {
		g16.Pix[i] = 0x80
	}
	for i := 0; i < len(rgba64.Pix); i += 8 {
		rgba64.Pix[i], rgba64.Pix[i+6], rgba64.Pix[i+7] = 0x80, 0xFF, 0xFF
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		r, g, b uint8
	}{
		{"png gray16", encodePNG(t, g16), 128, 128, 128},
		{"png rgba64", encodePNG(t, rgba64), 128, 0, 0},
		{"png paletted", encodePNG(t, pal), 255, 255, 255},
		{"png transparent", encodePNG(t, trans), 255, 255, 255},
		{"jpeg gray", encodeJPEG(t, grayJPEGSource), 100, 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			h, herr := parseHeader(data)
			if herr != nil {
				t.Fatal(herr)
			}
			m, err := decodeScaled(data, h, 1)
			if err != nil {
				t.Fatal(err)
			}
			i := 3 * (15*m.w + 20)
			near := func(a, b uint8) bool { return int(a)+3 >= int(b) && int(b)+3 >= int(a) }
			if !near(m.pix[i], tc.r) || !near(m.pix[i+1], tc.g) || !near(m.pix[i+2], tc.b) {
				t.Errorf("pixel %v, want %d,%d,%d", m.pix[i:i+3], tc.r, tc.g, tc.b)
			}
		})
	}
}

// TestDecodeGoldenJPEGs decodes a progressive and a CMYK JPEG (made with
// vips from a left-dark, right-light ramp; see testdata/README.md).
func TestDecodeGoldenJPEGs(t *testing.T) {
	for _, name := range []string{"progressive.jpg", "cmyk.jpg"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			h, herr := parseHeader(data)
			if herr != nil {
				t.Fatal(herr)
			}
			if name == "cmyk.jpg" && h.components != 4 {
				t.Errorf("components %d, want 4", h.components)
			}
			m, err := decodeScaled(data, h, 1)
			if err != nil {
				t.Fatal(err)
			}
			l := m.luma()
			left, right := l[24*m.w+2], l[24*m.w+60]
			if left > 60 || right < 200 {
				t.Errorf("luma left %d right %d, want dark to light", left, right)
			}
		})
	}
}

// TestFromImageAlpha checks the fast conversions against the generic one:
// transparent pixels become white, opaque ones keep their colour.
func TestFromImageAlpha(t *testing.T) {
	n := image.NewNRGBA(image.Rect(0, 0, 3, 1))
	copy(n.Pix, []uint8{200, 100, 50, 255, 200, 100, 50, 0, 0, 0, 0, 128})
	r := image.NewRGBA(image.Rect(0, 0, 3, 1))
	for x := 0; x < 3; x++ {
		r.Set(x, 0, n.At(x, 0))
	}
	want := []uint8{200, 100, 50, 255, 255, 255, 127, 127, 127}
	for name, img := range map[string]image.Image{"nrgba": n, "rgba": r} {
		got := scaleImage(img, 1, img.Bounds()).pix
		for i := range want {
			if d := int(got[i]) - int(want[i]); d < -1 || d > 1 {
				t.Errorf("%s: %v, want %v", name, got, want)
				break
			}
		}
	}
}

// An image just over the limit is told by its exact pixel count: rounded to
// megapixels it would read "50.0 megapixels; at most 50", which a person
// cannot act on.
func TestTooLargeSaysByHowMuch(t *testing.T) {
	var he *HeaderError
	if err := CheckPhotoHeader(pngHeaderOnly(7072, 7072)); !errors.As(err, &he) || he.Code != CodeTooLarge {
		t.Fatalf("7072x7072: got %v, want %s", err, CodeTooLarge)
	}
	for _, want := range []string{"50,013,184 pixels", "50,000,000"} {
		if !strings.Contains(he.Message, want) {
			t.Errorf("message %q does not say %q", he.Message, want)
		}
	}
}
