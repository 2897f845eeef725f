package imaging

import (
	"image"
	"math"
	"sort"
)

// Portrait geometry (DESIGN §4): 300x380 px at 300 dpi, chin-to-crown 75% of
// the height, eye line 45% from the top.
const (
	PortraitW   = 300
	PortraitH   = 380
	PortraitDPI = 300
	headFrac    = 0.75
	eyeLineFrac = 0.45
	maxUpscale  = 1.25 // beyond this the portrait would show invented detail
	maxRollFix  = 8.0  // degrees; larger rolls are refused, not straightened
)

// placement maps portrait pixels to source pixels: the portrait point
// (ox, oy) lands on source point (cx, cy), portrait pixels are 1/k source
// pixels, and the source is rotated by rollDeg around (cx, cy).
type placement struct {
	cx, cy  float64 // full-resolution oriented source coordinates
	ox, oy  float64 // portrait coordinates of the same point
	k       float64 // portrait pixels per source pixel
	rollDeg float64
}

// toSource returns the source point under portrait point (u, v).
func (p placement) toSource(u, v float64) (float64, float64) {
	s, c := math.Sincos(p.rollDeg * math.Pi / 180)
	dx, dy := (u-p.ox)/p.k, (v-p.oy)/p.k
	return p.cx + c*dx - s*dy, p.cy + s*dx + c*dy
}

// crop reports the axis-aligned source rectangle of the portrait (before
// rotation), rounded to whole pixels.
func (p placement) crop() *Crop {
	x0, y0 := p.cx-p.ox/p.k, p.cy-p.oy/p.k
	return &Crop{
		X: int(math.Round(x0)), Y: int(math.Round(y0)),
		W: int(math.Round(PortraitW / p.k)), H: int(math.Round(PortraitH / p.k)),
		RollDeg: p.rollDeg, Scale: p.k,
	}
}

// render samples the portrait in colour from a raster decoded at 1/denom of
// full resolution. Each output pixel averages 2x2 bilinear taps, which keeps
// aliasing low for the up-to-2x reductions the decode scale leaves. Pixels
// outside the source repeat the nearest edge.
func render(m *rgb, denom int, p placement) *rgb {
	out := newRGB(PortraitW, PortraitH)
	// A pixel j of the scaled raster covers source [j*denom, (j+1)*denom).
	inv := 1 / float64(denom)
	for v := 0; v < PortraitH; v++ {
		for u := 0; u < PortraitW; u++ {
			var r, g, b float64
			for _, t := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
				sx, sy := p.toSource(float64(u)+t[0], float64(v)+t[1])
				rr, gg, bb := m.bilinear(sx*inv, sy*inv)
				r, g, b = r+rr, g+gg, b+bb
			}
			d := 3 * (v*PortraitW + u)
			out.pix[d], out.pix[d+1], out.pix[d+2] = clamp8(r/4), clamp8(g/4), clamp8(b/4)
		}
	}
	return out
}

// bilinear samples at continuous coordinates where pixel i covers [i, i+1).
func (m *rgb) bilinear(x, y float64) (float64, float64, float64) {
	x -= 0.5
	y -= 0.5
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	ix, iy := int(x0), int(y0)
	px := func(xx, yy int) (float64, float64, float64) {
		xx = min(max(xx, 0), m.w-1)
		yy = min(max(yy, 0), m.h-1)
		i := 3 * (yy*m.w + xx)
		return float64(m.pix[i]), float64(m.pix[i+1]), float64(m.pix[i+2])
	}
	r00, g00, b00 := px(ix, iy)
	r10, g10, b10 := px(ix+1, iy)
	r01, g01, b01 := px(ix, iy+1)
	r11, g11, b11 := px(ix+1, iy+1)
	lerp := func(a, b, c, d float64) float64 {
		return (a*(1-fx)+b*fx)*(1-fy) + (c*(1-fx)+d*fx)*fy
	}
	return lerp(r00, r10, r01, r11), lerp(g00, g10, g01, g11), lerp(b00, b10, b01, b11)
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// autoLevels stretches the gray portrait so that the 0.5th and 99.5th
// percentiles become 0 and 255. Laser engraving has a narrow tonal range, so
// the portrait should use all of it; the gain is capped at 3 so that a flat,
// dark photo is not turned into noise.
func autoLevels(pix []uint8) {
	var hist [256]int
	for _, v := range pix {
		hist[v]++
	}
	lo, hi := percentileHist(&hist, len(pix), 0.005), percentileHist(&hist, len(pix), 0.995)
	if hi <= lo {
		return
	}
	gain := 255 / float64(hi-lo)
	if gain > 3 {
		gain = 3
	}
	if gain <= 1 {
		return
	}
	var lut [256]uint8
	for i := range lut {
		lut[i] = clamp8((float64(i) - float64(lo)) * gain)
	}
	for i, v := range pix {
		pix[i] = lut[v]
	}
}

func percentileHist(hist *[256]int, n int, p float64) int {
	target := int(p * float64(n))
	acc := 0
	for v, c := range hist {
		acc += c
		if acc > target {
			return v
		}
	}
	return 255
}

// grayImage wraps a 300x380 luma plane as an *image.Gray.
func grayImage(pix []uint8, w, h int) *image.Gray {
	return &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
}

// percentile of a sample (p in [0,1]); the slice is sorted in place.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(p * float64(len(v)-1))
	return v[i]
}
