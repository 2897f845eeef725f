package imaging

import (
	"image"
	"image/color"
)

// rgb is an interleaved 8-bit RGB raster: the one pixel format every decoder
// path produces, so the rest of the stage has a single code path.
type rgb struct {
	w, h int
	pix  []uint8 // len 3*w*h, row-major
}

func newRGB(w, h int) *rgb { return &rgb{w: w, h: h, pix: make([]uint8, 3*w*h)} }

// luma returns the BT.601 luma plane (the same weights JPEG uses).
func (m *rgb) luma() []uint8 {
	out := make([]uint8, m.w*m.h)
	for i, j := 0, 0; i < len(out); i, j = i+1, j+3 {
		out[i] = uint8((19595*uint32(m.pix[j]) + 38470*uint32(m.pix[j+1]) + 7471*uint32(m.pix[j+2]) + 1<<15) >> 16)
	}
	return out
}

// scaleImage converts region r (stored coordinates at 1/denom) of an image
// decoded by the Go decoders to rgb, one row at a time, so no full-size
// copy is made. Transparent pixels are composited over white, the colour
// a missing background should have.
func scaleImage(img image.Image, denom int, r image.Rectangle) *rgb {
	b := img.Bounds()
	red := newReducer(b.Dx(), b.Dy(), denom, r)
	row := make([]uint8, 3*b.Dx())
	for y := 0; y < b.Dy(); y++ {
		if red.wantRow(y) {
			imageRow(img, b.Min.Y+y, row)
			red.add(y, row, 0, 1)
		}
	}
	return red.result()
}

// imageRow writes row y of img as RGB into dst (3 bytes per pixel).
func imageRow(img image.Image, y int, dst []uint8) {
	b := img.Bounds()
	switch src := img.(type) {
	case *image.YCbCr:
		for x, i := b.Min.X, 0; x < b.Max.X; x, i = x+1, i+3 {
			yi, ci := src.YOffset(x, y), src.COffset(x, y)
			dst[i], dst[i+1], dst[i+2] = color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
		}
	case *image.Gray:
		row := src.Pix[(y-b.Min.Y)*src.Stride:]
		for x := 0; x < b.Dx(); x++ {
			v := row[x]
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
	case *image.NRGBA: // straight alpha
		row := src.Pix[(y-b.Min.Y)*src.Stride : (y-b.Min.Y)*src.Stride+4*b.Dx()]
		for i, j := 0, 0; j < len(row); i, j = i+3, j+4 {
			a := uint32(row[j+3])
			w := (255 - a) * 255
			dst[i] = uint8((uint32(row[j])*a + w + 127) / 255)
			dst[i+1] = uint8((uint32(row[j+1])*a + w + 127) / 255)
			dst[i+2] = uint8((uint32(row[j+2])*a + w + 127) / 255)
		}
	case *image.RGBA: // premultiplied alpha
		row := src.Pix[(y-b.Min.Y)*src.Stride : (y-b.Min.Y)*src.Stride+4*b.Dx()]
		for i, j := 0, 0; j < len(row); i, j = i+3, j+4 {
			w := 255 - uint32(row[j+3])
			dst[i] = uint8(min(uint32(row[j])+w, 255))
			dst[i+1] = uint8(min(uint32(row[j+1])+w, 255))
			dst[i+2] = uint8(min(uint32(row[j+2])+w, 255))
		}
	default:
		for x, i := b.Min.X, 0; x < b.Max.X; x, i = x+1, i+3 {
			r, g, bb, a := img.At(x, y).RGBA() // premultiplied, 16-bit
			w := 0xFFFF - a
			dst[i], dst[i+1], dst[i+2] = uint8((r+w)>>8), uint8((g+w)>>8), uint8((bb+w)>>8)
		}
	}
}

// reducer box-averages denom x denom blocks of a w x h image into region r
// of the image at 1/denom, whose size is rounded up as libjpeg scales: an
// edge block averages the pixels it has. Rows may come in any order and
// pixels at any spacing (the passes of an interlaced PNG), and rows outside
// the region cost nothing, so a decoder can stream into it.
type reducer struct {
	d, w, h int
	r       image.Rectangle
	sum     []uint16 // 3 per output pixel; denom <= 8 keeps 64*255 in 16 bits
	out     *rgb     // at denom 1 pixels go straight here, without sums
}

func newReducer(w, h, denom int, r image.Rectangle) *reducer {
	if denom == 1 {
		return &reducer{d: 1, w: w, h: h, r: r, out: newRGB(r.Dx(), r.Dy())}
	}
	return &reducer{d: denom, w: w, h: h, r: r, sum: make([]uint16, 3*r.Dx()*r.Dy())}
}

// wantRow reports whether full-resolution row y lies in the region.
func (red *reducer) wantRow(y int) bool {
	oy := y / red.d
	return oy >= red.r.Min.Y && oy < red.r.Max.Y
}

// add accumulates full-resolution row y, whose RGB pixels pix lie at
// x = x0, x0+dx, x0+2dx, ...
func (red *reducer) add(y int, pix []uint8, x0, dx int) {
	if !red.wantRow(y) {
		return
	}
	if red.out != nil {
		red.copyRow(y, pix, x0, dx)
		return
	}
	rw := red.r.Dx()
	out := red.sum[3*(y/red.d-red.r.Min.Y)*rw : 3*(y/red.d-red.r.Min.Y+1)*rw]
	lo, hi := red.r.Min.X*red.d, min(red.r.Max.X*red.d, red.w)
	if dx == 1 { // a whole row: sum each block's pixels, then add once
		hi = min(hi, x0+len(pix)/3)
		for ox := red.r.Min.X; ox < red.r.Max.X; ox++ {
			var r, g, b uint16
			for x := max(ox*red.d, x0, lo); x < min(ox*red.d+red.d, hi); x++ {
				p := pix[3*(x-x0) : 3*(x-x0)+3 : 3*(x-x0)+3]
				r += uint16(p[0])
				g += uint16(p[1])
				b += uint16(p[2])
			}
			s := out[3*(ox-red.r.Min.X) : 3*(ox-red.r.Min.X)+3 : 3*(ox-red.r.Min.X)+3]
			s[0] += r
			s[1] += g
			s[2] += b
		}
		return
	}
	i := 0
	if x0 < lo { // first pixel at or after lo
		i = (lo - x0 + dx - 1) / dx
	}
	for x := x0 + i*dx; x < hi && 3*i+2 < len(pix); x, i = x+dx, i+1 {
		o := 3 * (x/red.d - red.r.Min.X)
		p := pix[3*i : 3*i+3 : 3*i+3]
		s := out[o : o+3 : o+3]
		s[0] += uint16(p[0])
		s[1] += uint16(p[1])
		s[2] += uint16(p[2])
	}
}

// copyRow is add at denom 1: pixels are copied, not summed.
func (red *reducer) copyRow(y int, pix []uint8, x0, dx int) {
	row := red.out.pix[3*(y-red.r.Min.Y)*red.out.w : 3*(y-red.r.Min.Y+1)*red.out.w]
	if dx == 1 {
		lo, hi := max(red.r.Min.X, x0), min(red.r.Max.X, x0+len(pix)/3)
		if lo < hi {
			copy(row[3*(lo-red.r.Min.X):], pix[3*(lo-x0):3*(hi-x0)])
		}
		return
	}
	for i := 0; 3*i+2 < len(pix); i++ {
		if x := x0 + i*dx - red.r.Min.X; x >= 0 && x < red.out.w {
			copy(row[3*x:3*x+3], pix[3*i:3*i+3])
		}
	}
}

// result divides every sum by the number of pixels its block has.
func (red *reducer) result() *rgb {
	if red.out != nil {
		return red.out
	}
	m := newRGB(red.r.Dx(), red.r.Dy())
	for oy := 0; oy < m.h; oy++ {
		bh := min(red.d, red.h-(red.r.Min.Y+oy)*red.d)
		for ox := 0; ox < m.w; ox++ {
			n := uint32(max(1, bh*min(red.d, red.w-(red.r.Min.X+ox)*red.d)))
			i := 3 * (oy*m.w + ox)
			for c := 0; c < 3; c++ {
				m.pix[i+c] = uint8((uint32(red.sum[i+c]) + n/2) / n)
			}
		}
	}
	return m
}

// orient applies an EXIF orientation (1..8) and returns the upright raster.
func (m *rgb) orient(o int) *rgb {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.w, m.h
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := newRGB(ow, oh)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90 CW
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90 CCW
				dx, dy = y, w-1-x
			}
			s, d := 3*(y*w+x), 3*(dy*ow+dx)
			out.pix[d], out.pix[d+1], out.pix[d+2] = m.pix[s], m.pix[s+1], m.pix[s+2]
		}
	}
	return out
}

// downsample shrinks by an integer factor with box averaging (used for the
// pure-Go path to mimic DCT-scaled decoding, and for the working copy).
// Pixels beyond the last whole block are dropped.
func (m *rgb) downsample(f int) *rgb {
	if f <= 1 {
		return m
	}
	ow, oh := m.w/f, m.h/f
	if ow < 1 || oh < 1 {
		return m.downsampleSmall(f)
	}
	out := newRGB(ow, oh)
	acc := make([]uint32, 3*ow)
	n := uint32(f * f)
	for y := 0; y < oh; y++ {
		clear(acc)
		for yy := y * f; yy < (y+1)*f; yy++ {
			row := m.pix[3*yy*m.w : 3*(yy*m.w+ow*f)]
			switch f { // unrolled for the common factors: this is a hot loop
			case 2:
				for x := 0; x < ow; x++ {
					p := row[6*x : 6*x+6 : 6*x+6]
					a := acc[3*x : 3*x+3 : 3*x+3]
					a[0] += uint32(p[0]) + uint32(p[3])
					a[1] += uint32(p[1]) + uint32(p[4])
					a[2] += uint32(p[2]) + uint32(p[5])
				}
			case 3:
				for x := 0; x < ow; x++ {
					p := row[9*x : 9*x+9 : 9*x+9]
					a := acc[3*x : 3*x+3 : 3*x+3]
					a[0] += uint32(p[0]) + uint32(p[3]) + uint32(p[6])
					a[1] += uint32(p[1]) + uint32(p[4]) + uint32(p[7])
					a[2] += uint32(p[2]) + uint32(p[5]) + uint32(p[8])
				}
			default:
				j := 0
				for x := 0; x < ow; x++ {
					var r, g, b uint32
					for k := 0; k < f; k++ {
						p := row[j : j+3 : j+3]
						r += uint32(p[0])
						g += uint32(p[1])
						b += uint32(p[2])
						j += 3
					}
					acc[3*x] += r
					acc[3*x+1] += g
					acc[3*x+2] += b
				}
			}
		}
		dst := out.pix[3*y*ow : 3*(y+1)*ow]
		for i, v := range acc {
			dst[i] = uint8((v + n/2) / n)
		}
	}
	return out
}

// downsampleSmall handles images smaller than one block: the mean colour.
func (m *rgb) downsampleSmall(f int) *rgb {
	var r, g, b uint64
	for i := 0; i+2 < len(m.pix); i += 3 {
		r += uint64(m.pix[i])
		g += uint64(m.pix[i+1])
		b += uint64(m.pix[i+2])
	}
	n := uint64(max(1, m.w*m.h))
	out := newRGB(1, 1)
	out.pix[0], out.pix[1], out.pix[2] = uint8(r/n), uint8(g/n), uint8(b/n)
	return out
}

// resizeArea resamples an RGB plane to ow x oh by area averaging (box
// filter with fractional coverage), separably with 16-bit fixed-point
// weights. It is meant for reductions below 2x (the working copy after an
// integer reduction), where an output pixel covers at most three input
// pixels per axis.
func resizeArea(src []uint8, w, h, ow, oh int) []uint8 {
	xw, yw := areaWeights(w, ow), areaWeights(h, oh)
	stride := 3 * ow
	tmp := make([]uint32, stride*h) // 8.16 fixed point
	for y := 0; y < h; y++ {
		row := src[3*y*w : 3*(y+1)*w]
		out := tmp[y*stride : (y+1)*stride]
		for x := range xw {
			t := &xw[x]
			var r, g, b uint32
			j := 3 * t.i
			for k := 0; k < t.n; k++ {
				p := row[j : j+3 : j+3]
				wk := t.w[k]
				r += wk * uint32(p[0])
				g += wk * uint32(p[1])
				b += wk * uint32(p[2])
				j += 3
			}
			o := out[3*x : 3*x+3 : 3*x+3]
			o[0], o[1], o[2] = r, g, b
		}
	}
	out := make([]uint8, stride*oh)
	acc := make([]uint64, stride)
	for y := range yw {
		t := &yw[y]
		clear(acc)
		for k := 0; k < t.n; k++ {
			w := uint64(t.w[k])
			src := tmp[(t.i+k)*stride : (t.i+k+1)*stride]
			for i, v := range src {
				acc[i] += w * uint64(v)
			}
		}
		dst := out[y*stride : (y+1)*stride]
		for i, v := range acc {
			dst[i] = uint8(min((v+1<<31)>>32, 255))
		}
	}
	return out
}

// span is the input pixels [i, i+n) one output pixel covers, with weights
// summing to 1<<16.
type span struct {
	i, n int
	w    [maxTaps]uint32
}

const maxTaps = 3

// areaWeights computes the spans of n output pixels over an axis of size
// input pixels; size/n must be below 2 so that three taps suffice.
func areaWeights(size, n int) []span {
	scale := float64(size) / float64(n)
	out := make([]span, n)
	for o := range out {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		sp := span{i: int(lo)}
		var sum uint32
		for i := int(lo); i < size && float64(i) < hi && sp.n < maxTaps; i++ {
			cov := min(hi, float64(i+1)) - max(lo, float64(i))
			sp.w[sp.n] = uint32(cov / scale * (1 << 16))
			sum += sp.w[sp.n]
			sp.n++
		}
		if sp.n > 0 {
			sp.w[0] += 1<<16 - sum // rounding remainder, so weights sum to exactly 1
		}
		out[o] = sp
	}
	return out
}
