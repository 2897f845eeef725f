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

// fromImage converts any decoded image to rgb. Transparent pixels are
// composited over white, the colour a missing background should have.
func fromImage(img image.Image) *rgb {
	b := img.Bounds()
	m := newRGB(b.Dx(), b.Dy())
	switch src := img.(type) {
	case *image.YCbCr:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := src.YOffset(x, y), src.COffset(x, y)
				r, g, bb := color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
				m.pix[i], m.pix[i+1], m.pix[i+2] = r, g, bb
				i += 3
			}
		}
	case *image.Gray:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[(y-b.Min.Y)*src.Stride:]
			for x := 0; x < b.Dx(); x++ {
				v := row[x]
				m.pix[i], m.pix[i+1], m.pix[i+2] = v, v, v
				i += 3
			}
		}
	default:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, a := img.At(x, y).RGBA() // premultiplied, 16-bit
				w := 0xFFFF - a
				m.pix[i] = uint8((r + w) >> 8)
				m.pix[i+1] = uint8((g + w) >> 8)
				m.pix[i+2] = uint8((bb + w) >> 8)
				i += 3
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
func (m *rgb) downsample(f int) *rgb {
	if f <= 1 {
		return m
	}
	ow, oh := m.w/f, m.h/f
	if ow < 1 {
		ow = 1
	}
	if oh < 1 {
		oh = 1
	}
	out := newRGB(ow, oh)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var r, g, b, n uint32
			for yy := y * f; yy < (y+1)*f && yy < m.h; yy++ {
				s := 3 * (yy*m.w + x*f)
				for xx := x * f; xx < (x+1)*f && xx < m.w; xx++ {
					r += uint32(m.pix[s])
					g += uint32(m.pix[s+1])
					b += uint32(m.pix[s+2])
					n++
					s += 3
				}
			}
			d := 3 * (y*ow + x)
			out.pix[d], out.pix[d+1], out.pix[d+2] = uint8(r/n), uint8(g/n), uint8(b/n)
		}
	}
	return out
}

// resizeArea resamples an interleaved plane with ch channels to ow x oh by
// area averaging (box filter with fractional coverage), separably: rows
// first, then columns, with weights computed once per axis.
func resizeArea(src []uint8, ch, w, h, ow, oh int) []uint8 {
	xw := areaWeights(w, ow)
	yw := areaWeights(h, oh)
	tmp := make([]float32, ch*ow*h)
	for y := 0; y < h; y++ {
		row := src[ch*y*w : ch*(y+1)*w]
		out := tmp[ch*y*ow : ch*(y+1)*ow]
		for x, taps := range xw {
			for _, t := range taps {
				for c := 0; c < ch; c++ {
					out[ch*x+c] += t.w * float32(row[ch*t.i+c])
				}
			}
		}
	}
	out := make([]uint8, ch*ow*oh)
	for y, taps := range yw {
		dst := out[ch*y*ow : ch*(y+1)*ow]
		for i := range dst {
			var acc float32
			for _, t := range taps {
				acc += t.w * tmp[ch*t.i*ow+i]
			}
			dst[i] = uint8(min(max(acc+0.5, 0), 255))
		}
	}
	return out
}

type tap struct {
	i int
	w float32
}

// areaWeights lists, for each of n output pixels, the input pixels of an
// axis of length size that it covers and their normalised coverage.
func areaWeights(size, n int) [][]tap {
	scale := float64(size) / float64(n)
	out := make([][]tap, n)
	for o := range out {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for i := int(lo); i < size && float64(i) < hi; i++ {
			cov := min(hi, float64(i+1)) - max(lo, float64(i))
			if cov > 0 {
				out[o] = append(out[o], tap{i: i, w: float32(cov / scale)})
			}
		}
	}
	return out
}
