package imaging

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"testing"
)

// TestRegionDecodeMatchesWhole: the second, finer decode reads only the
// portrait's window. For every decoder path and EXIF orientation, a region
// must hold the pixels the whole decode has there. libjpeg widens a crop to
// whole iMCU columns and its fancy upsampling sees the crop's edge, so JPEG
// pixels may differ by a few levels.
func TestRegionDecodeMatchesWhole(t *testing.T) {
	portrait := readPhoto(t, "dev/pass_london_010_03.jpg")
	src := decodeAll(t, portrait)
	inputs := map[string][]byte{}
	for _, o := range []int{1, 3, 6, 8} {
		st := storedFor(toRGBA(src), o)
		inputs[fmt.Sprintf("jpeg o=%d", o)] = withEXIF(encodeJPEG(t, st), o, false)
		inputs[fmt.Sprintf("png o=%d", o)] = withPNGEXIF(encodePNG(t, st), o)
	}
	for _, name := range []string{"progressive.jpg", "cmyk.jpg"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = b
	}
	for name, data := range inputs {
		h, herr := parseHeader(data)
		if herr != nil {
			t.Fatal(herr)
		}
		for _, d := range []int{1, 2, 4} {
			s := &source{data: data, h: h}
			b := s.bounds(d)
			whole, err := s.decode(d, b)
			if err != nil {
				t.Fatalf("%s 1/%d: %v", name, d, err)
			}
			r := image.Rect(b.Dx()/3, b.Dy()/4, b.Dx()*2/3+1, b.Dy()*3/4)
			part, err := s.decode(d, r)
			if err != nil {
				t.Fatalf("%s 1/%d region %v: %v", name, d, r, err)
			}
			tol := 0
			if h.format == formatJPEG {
				tol = 4
			}
			if i := firstDiff(part.pix, whole.sub(r).pix, tol); i >= 0 {
				t.Errorf("%s 1/%d region %v: pixel %d is %v, whole decode %v", name, d, r, i/3,
					part.pix[i/3*3:i/3*3+3], whole.sub(r).pix[i/3*3:i/3*3+3])
			}
		}
	}
}
