package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
)

// EncodePNG encodes img as PNG with a pHYs chunk so that printers and PDF
// tools place it at its physical size (dpi pixels per inch).
func EncodePNG(img image.Image, dpi int) ([]byte, error) {
	if img == nil {
		return nil, errors.New("no image to encode")
	}
	if dpi <= 0 {
		return nil, errors.New("dpi must be positive")
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img); err != nil {
		return nil, err
	}
	return WithDPI(buf.Bytes(), dpi)
}

// WithDPI inserts a pHYs chunk (dpi pixels per inch) into an encoded PNG;
// image/png writes none.
func WithDPI(raw []byte, dpi int) ([]byte, error) {
	// Signature (8) + IHDR chunk (4+4+13+4): pHYs must precede IDAT, so it
	// goes right after IHDR.
	const ihdrEnd = 8 + 25
	if len(raw) < ihdrEnd || string(raw[12:16]) != "IHDR" {
		return nil, errors.New("not a PNG with an IHDR chunk")
	}
	ppm := uint32(float64(dpi)/0.0254 + 0.5) // pixels per metre
	chunk := make([]byte, 0, 21)
	chunk = binary.BigEndian.AppendUint32(chunk, 9)
	chunk = append(chunk, "pHYs"...)
	chunk = binary.BigEndian.AppendUint32(chunk, ppm)
	chunk = binary.BigEndian.AppendUint32(chunk, ppm)
	chunk = append(chunk, 1) // unit: metre
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := make([]byte, 0, len(raw)+len(chunk))
	out = append(out, raw[:ihdrEnd]...)
	out = append(out, chunk...)
	out = append(out, raw[ihdrEnd:]...)
	return out, nil
}

// chipJPEGMax is the size the chip's facial image should stay under; card
// memory is shared with certificates, and 15 KB is what the issue asks for.
const chipJPEGMax = 15 << 10

// encodeChipJPEG encodes the portrait at the highest quality (in steps of 5,
// from 90 down to 40) that fits in chipJPEGMax.
func encodeChipJPEG(img *image.Gray) ([]byte, error) {
	var out []byte
	for q := 90; q >= 40; q -= 5 {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
			return nil, err
		}
		out = buf.Bytes()
		if len(out) <= chipJPEGMax {
			break
		}
	}
	return out, nil
}
