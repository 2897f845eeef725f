package imaging

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The thresholds must not sit on the edge of the photos we have: ordinary
// variations of a good photo (another JPEG quality, size, exposure, sensor
// noise, slight softness, a small tilt) must still pass, and re-encoding a
// bad photo must not make it pass.

func scaled(m *rgb, f float64) *rgb {
	nw, nh := int(float64(m.w)*f), int(float64(m.h)*f)
	out := newRGB(nw, nh)
	for y := 0; y < nh; y++ {
		for x := 0; x < nw; x++ {
			r, g, b := m.bilinear((float64(x)+0.5)/f, (float64(y)+0.5)/f)
			i := 3 * (y*nw + x)
			out.pix[i], out.pix[i+1], out.pix[i+2] = clamp8(r), clamp8(g), clamp8(b)
		}
	}
	return out
}

func perPixel(m *rgb, fn func(v float64) float64) *rgb {
	out := newRGB(m.w, m.h)
	for i, v := range m.pix {
		out.pix[i] = clamp8(fn(float64(v)))
	}
	return out
}

func TestVariantsOfGoodPhotos(t *testing.T) {
	photos := []string{"dev/pass_london_001_03.jpg", "dev/pass_london_042_03.jpg", "dev/pass_london_063_03.jpg",
		"dev/pass_london_099_03.jpg", "dev/pass_london_135_03.jpg", "dev/pass_london_smiling_025_08.jpg"}
	noise := rand.New(rand.NewPCG(1, 2))
	variants := []struct {
		name string
		fn   func(*rgb) *rgb
	}{
		{"half size", func(m *rgb) *rgb { return scaled(m, 0.5) }},
		{"1.6x size", func(m *rgb) *rgb { return scaled(m, 1.6) }},
		{"20% brighter", func(m *rgb) *rgb { return perPixel(m, func(v float64) float64 { return 1.2 * v }) }},
		{"gamma 1.4", func(m *rgb) *rgb {
			return perPixel(m, func(v float64) float64 { return 255 * math.Pow(v/255, 1.4) })
		}},
		{"sensor noise", func(m *rgb) *rgb { return perPixel(m, func(v float64) float64 { return v + 8*noise.NormFloat64() }) }},
		{"soft (2x box)", func(m *rgb) *rgb { return scaled(m.downsample(2), 2) }},
		{"tilted 3°", func(m *rgb) *rgb { return rotated(m, 3) }},
	}
	for _, name := range photos {
		src := decodeAll(t, readPhoto(t, name))
		for _, v := range variants {
			res := CheckPhoto(encodeJPEG(t, toRGBA(v.fn(src))))
			if res.Verdict != VerdictPass {
				t.Errorf("%s, %s: %s %v", name, v.name, res.Verdict, res.Reasons)
			}
		}
		res := CheckPhoto(encodePNG(t, toRGBA(src)))
		if res.Verdict != VerdictPass {
			t.Errorf("%s as PNG: %s %v", name, res.Verdict, res.Reasons)
		}
	}
}

func TestReencodedBadPhotosStillFail(t *testing.T) {
	dir := photosDir(t)
	for _, e := range readExpected(t, dir) {
		if e.verdict != "FAIL" || strings.Contains(e.file, "jpeg_q5") {
			continue // re-encoding the q5 file at normal quality is a different photo
		}
		res := CheckPhoto(encodeJPEG(t, toRGBA(decodeAll(t, readPhoto(t, e.file)))))
		if res.Verdict == VerdictPass {
			t.Errorf("%s re-encoded at q90 passes", e.file)
		}
	}
}
