package imaging

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"image/png"
)

// decodeScaled decodes the image at 1/denom of its stored size (denom 1, 2,
// 4 or 8) and applies the EXIF orientation. JPEGs use libjpeg-turbo's DCT
// scaling when cgo is available, which is what makes a 12 MP upload cheap:
// the IDCT runs on fewer coefficients instead of decoding everything and
// throwing most of it away. CMYK JPEGs and PNGs take the pure-Go path.
func decodeScaled(data []byte, h header, denom int) (*rgb, error) {
	var (
		m   *rgb
		err error
	)
	switch {
	case h.format == formatJPEG && h.components != 4 && turboAvailable:
		m, err = turboDecode(data, denom)
	case h.format == formatJPEG:
		img, derr := jpeg.Decode(bytes.NewReader(data))
		if derr != nil {
			return nil, fmt.Errorf("decoding JPEG: %w", derr)
		}
		m = fromImage(img).downsample(denom)
	case h.format == formatPNG:
		img, derr := png.Decode(bytes.NewReader(data))
		if derr != nil {
			return nil, fmt.Errorf("decoding PNG: %w", derr)
		}
		m = fromImage(img).downsample(denom)
	default:
		return nil, fmt.Errorf("unsupported format %q", h.format)
	}
	if err != nil {
		return nil, err
	}
	return m.orient(h.orientation), nil
}

// scaledSize is the stored size after decoding at 1/denom, rounded up as
// libjpeg does; the pure-Go path rounds down, which stays within a pixel.
func scaledSize(w, h, denom int) (int, int) {
	return (w + denom - 1) / denom, (h + denom - 1) / denom
}
