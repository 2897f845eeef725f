package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// source decodes an upload at the scales and regions the stage asks for.
// JPEGs go through libjpeg-turbo when cgo is available: its DCT scaling
// runs the IDCT on fewer coefficients instead of decoding everything and
// throwing most of it away, and a region decode skips the rows below it.
// PNGs stream their rows through a box reduction, so neither costs more
// than the raster it returns, whatever the bit depth. Without cgo, JPEGs
// take image/jpeg once and are scaled from that.
type source struct {
	data []byte
	h    header
	img  image.Image // the pure-Go JPEG, decoded once
}

// decodeScaled decodes the whole image at 1/denom (denom 1, 2, 4 or 8),
// upright after its EXIF orientation.
func decodeScaled(data []byte, h header, denom int) (*rgb, error) {
	s := &source{data: data, h: h}
	return s.decode(denom, s.bounds(denom))
}

// bounds is the oriented image at 1/denom.
func (s *source) bounds(denom int) image.Rectangle {
	w, h := scaledSize(s.h.w, s.h.h, denom)
	if s.h.orientation >= 5 {
		w, h = h, w
	}
	return image.Rect(0, 0, w, h)
}

// decode returns region r of the oriented image at 1/denom. A decode of
// the whole image reads the whole file, so damage anywhere is an error.
func (s *source) decode(denom int, r image.Rectangle) (*rgb, error) {
	sw, sh := scaledSize(s.h.w, s.h.h, denom)
	stored := unorientRect(r, s.h.orientation, sw, sh)
	full := r == s.bounds(denom)
	var (
		m   *rgb
		err error
	)
	switch {
	case s.h.format == formatJPEG && turboAvailable:
		m, err = turboDecode(s.data, s.h, denom, stored, full)
	case s.h.format == formatJPEG:
		if s.img == nil {
			if s.img, err = jpeg.Decode(bytes.NewReader(s.data)); err != nil {
				return nil, fmt.Errorf("decoding JPEG: %w", err)
			}
		}
		m = scaleImage(s.img, denom, stored)
	case s.h.format == formatPNG:
		m, err = decodePNG(s.data, denom, stored)
	default:
		return nil, fmt.Errorf("unsupported format %q", s.h.format)
	}
	if err != nil {
		return nil, err
	}
	return m.orient(s.h.orientation), nil
}

// scaledSize is the stored size after decoding at 1/denom, rounded up as
// libjpeg does (an edge block averages the pixels it has).
func scaledSize(w, h, denom int) (int, int) {
	return (w + denom - 1) / denom, (h + denom - 1) / denom
}

// unorientRect maps a rectangle of the upright image back to the stored
// image of size w x h (the inverse of rgb.orient).
func unorientRect(r image.Rectangle, o, w, h int) image.Rectangle {
	x0, y0, x1, y1 := r.Min.X, r.Min.Y, r.Max.X, r.Max.Y
	switch o {
	case 2:
		return image.Rect(w-x1, y0, w-x0, y1)
	case 3:
		return image.Rect(w-x1, h-y1, w-x0, h-y0)
	case 4:
		return image.Rect(x0, h-y1, x1, h-y0)
	case 5:
		return image.Rect(y0, x0, y1, x1)
	case 6:
		return image.Rect(y0, h-x1, y1, h-x0)
	case 7:
		return image.Rect(w-y1, h-x1, w-y0, h-x0)
	case 8:
		return image.Rect(w-y1, x0, w-y0, x1)
	}
	return r
}
