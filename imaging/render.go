package imaging

import (
	"image"
	"math"
	"sort"
	"sync"
)

// Portrait geometry (docs/design.md §4): 300x380 px at 300 dpi, chin-to-crown 75% of
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

// affine returns the portrait-to-source map: x = ax*u + bx*v + cx0,
// y = ay*u + by*v + cy0 (full-resolution source pixels).
func (p placement) affine() (ax, bx, cx0, ay, by, cy0 float64) {
	s, c := math.Sincos(p.rollDeg * math.Pi / 180)
	ax, bx = c/p.k, -s/p.k
	ay, by = s/p.k, c/p.k
	cx0 = p.cx - ax*p.ox - bx*p.oy
	cy0 = p.cy - ay*p.ox - by*p.oy
	return
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

// raster is a decoded piece of the source: pixel (i, j) of m covers the
// full-resolution source square [(x0+i)*denom, (x0+i+1)*denom) and likewise
// in y.
type raster struct {
	m      *rgb
	x0, y0 int
	denom  int
}

// portraitWindow returns the rectangle of a raster decoded at 1/denom
// (bounds b) that the portrait samples, with a margin, and the box
// reduction f that keeps the portrait at most as fine as the reduced cut,
// so that the 2x2 bilinear taps of render never alias. The rectangle
// starts on the reduction's grid. When the portrait lies outside the photo
// (only possible for absurd geometry) it is the whole raster, unreduced:
// render repeats the edges.
func portraitWindow(b image.Rectangle, denom int, p placement) (image.Rectangle, int) {
	ax, bx, cx0, ay, by, cy0 := p.affine()
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, c := range [4][2]float64{{0, 0}, {PortraitW, 0}, {0, PortraitH}, {PortraitW, PortraitH}} {
		x, y := ax*c[0]+bx*c[1]+cx0, ay*c[0]+by*c[1]+cy0
		minX, maxX = math.Min(minX, x), math.Max(maxX, x)
		minY, maxY = math.Min(minY, y), math.Max(maxY, y)
	}
	f := 1
	for p.k*float64(denom*f*2) <= 1 {
		f *= 2
	}
	clampI := func(v float64, hi int) int { return min(max(int(v), 0), hi) }
	x0 := clampI(math.Floor(minX/float64(denom))-2, b.Dx()) / f * f
	y0 := clampI(math.Floor(minY/float64(denom))-2, b.Dy()) / f * f
	x1 := clampI(math.Ceil(maxX/float64(denom))+2, b.Dx())
	y1 := clampI(math.Ceil(maxY/float64(denom))+2, b.Dy())
	if x1-x0 < f || y1-y0 < f {
		return b, 1
	}
	return image.Rect(x0, y0, x1, y1), f
}

// sub copies rectangle r out of m.
func (m *rgb) sub(r image.Rectangle) *rgb {
	if r == image.Rect(0, 0, m.w, m.h) {
		return m
	}
	out := newRGB(r.Dx(), r.Dy())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(out.pix[3*(y-r.Min.Y)*out.w:3*(y-r.Min.Y+1)*out.w], m.pix[3*(y*m.w+r.Min.X):3*(y*m.w+r.Max.X)])
	}
	return out
}

// render samples the portrait in colour. Each output pixel averages 2x2
// bilinear taps; pixels outside the photo repeat the nearest edge.
func render(r raster, p placement) *rgb {
	out := newRGB(PortraitW, PortraitH)
	ax, bx, cx0, ay, by, cy0 := p.affine()
	inv := 1 / float64(r.denom)
	ox, oy := float64(r.x0), float64(r.y0)
	// Two halves in parallel: the station has at least two cores and the
	// portrait is on the critical path of every order.
	var wg sync.WaitGroup
	wg.Go(func() { renderRows(out, r, ax, bx, cx0, ay, by, cy0, inv, ox, oy, PortraitH/2, PortraitH) })
	renderRows(out, r, ax, bx, cx0, ay, by, cy0, inv, ox, oy, 0, PortraitH/2)
	wg.Wait()
	return out
}

func renderRows(out *rgb, r raster, ax, bx, cx0, ay, by, cy0, inv, ox, oy float64, v0, v1 int) {
	for v := v0; v < v1; v++ {
		for u := 0; u < PortraitW; u++ {
			var sr, sg, sb float64
			for _, t := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
				uu, vv := float64(u)+t[0], float64(v)+t[1]
				sx, sy := ax*uu+bx*vv+cx0, ay*uu+by*vv+cy0
				rr, gg, bb := r.m.bilinear(sx*inv-ox, sy*inv-oy)
				sr, sg, sb = sr+rr, sg+gg, sb+bb
			}
			d := 3 * (v*PortraitW + u)
			out.pix[d], out.pix[d+1], out.pix[d+2] = clamp8(sr/4), clamp8(sg/4), clamp8(sb/4)
		}
	}
}

// bilinear samples at continuous coordinates where pixel i covers [i, i+1);
// outside the raster the nearest edge pixel repeats.
func (m *rgb) bilinear(x, y float64) (float64, float64, float64) {
	x -= 0.5
	y -= 0.5
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	ix, iy := int(x0), int(y0)
	ix0, ix1 := min(max(ix, 0), m.w-1), min(max(ix+1, 0), m.w-1)
	iy0, iy1 := min(max(iy, 0), m.h-1), min(max(iy+1, 0), m.h-1)
	p00, p10 := 3*(iy0*m.w+ix0), 3*(iy0*m.w+ix1)
	p01, p11 := 3*(iy1*m.w+ix0), 3*(iy1*m.w+ix1)
	w00, w10 := (1-fx)*(1-fy), fx*(1-fy)
	w01, w11 := (1-fx)*fy, fx*fy
	px := m.pix
	r := w00*float64(px[p00]) + w10*float64(px[p10]) + w01*float64(px[p01]) + w11*float64(px[p11])
	g := w00*float64(px[p00+1]) + w10*float64(px[p10+1]) + w01*float64(px[p01+1]) + w11*float64(px[p11+1])
	b := w00*float64(px[p00+2]) + w10*float64(px[p10+2]) + w01*float64(px[p01+2]) + w11*float64(px[p11+2])
	return r, g, b
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
