package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Upload limits (DESIGN §4, ID06 portal rules).
const (
	MaxFileBytes  = 20 << 20   // 20 MB
	MaxPixels     = 50_000_000 // 50 megapixels
	MinPhotoW     = 300
	MinPhotoH     = 410
	MinLogoW      = 354
	MinLogoH      = 118
	formatJPEG    = "jpeg"
	formatPNG     = "png"
	maxHeaderScan = 1 << 20 // markers before SOF beyond this are not a photo we accept
)

// HeaderError is an intake failure found from the file header alone.
type HeaderError struct {
	Code    string // a reason code: unreadable_image, image_too_large or resolution_too_low
	Message string // what a person can do about it
}

func (e *HeaderError) Error() string { return e.Message }

// header is what the cheap intake check learns without decoding pixels.
type header struct {
	format      string
	w, h        int // as stored, before EXIF orientation
	orientation int // EXIF orientation 1..8 (1 when absent or invalid)
	components  int // JPEG: colour components (4 = CMYK/YCCK)
}

// orientedSize is the size after EXIF orientation is applied; orientations
// 5..8 swap the axes.
func (h header) orientedSize() (int, int) {
	if h.orientation >= 5 {
		return h.h, h.w
	}
	return h.w, h.h
}

func unreadable(format string, args ...any) *HeaderError {
	return &HeaderError{Code: CodeUnreadable, Message: fmt.Sprintf(format, args...)}
}

// parseHeader reads format, size and orientation, and enforces the byte and
// pixel limits so that no decoder ever sees an oversized image.
func parseHeader(data []byte) (header, *HeaderError) {
	if len(data) > MaxFileBytes {
		return header{}, &HeaderError{Code: CodeTooLarge, Message: fmt.Sprintf(
			"the file is %.1f MB; at most 20 MB is accepted", float64(len(data))/(1<<20))}
	}
	var (
		h   header
		err *HeaderError
	)
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		h, err = parseJPEGHeader(data)
	case len(data) >= 8 && bytes.Equal(data[:8], pngSignature):
		h, err = parsePNGHeader(data)
	case len(data) == 0:
		return header{}, unreadable("the file is empty")
	default:
		return header{}, unreadable("the file is not a JPEG or PNG image")
	}
	if err != nil {
		return header{}, err
	}
	if h.w <= 0 || h.h <= 0 {
		return header{}, unreadable("the image has no pixels (%dx%d)", h.w, h.h)
	}
	if int64(h.w)*int64(h.h) > MaxPixels {
		return header{}, &HeaderError{Code: CodeTooLarge, Message: fmt.Sprintf(
			"the image is %dx%d pixels (%.1f megapixels); at most 50 megapixels is accepted",
			h.w, h.h, float64(h.w)*float64(h.h)/1e6)}
	}
	return h, nil
}

// CheckPhotoHeader is the cheap intake check for a portrait upload: JPEG or
// PNG, at most 20 MB and 50 megapixels, at least 300x410 pixels after EXIF
// orientation. It returns a *HeaderError or nil.
func CheckPhotoHeader(data []byte) error {
	h, err := parseHeader(data)
	if err != nil {
		return err
	}
	if w, ht := h.orientedSize(); w < MinPhotoW || ht < MinPhotoH {
		return &HeaderError{Code: CodeResolutionTooLow, Message: fmt.Sprintf(
			"the photo is %dx%d pixels; at least %dx%d pixels is required", w, ht, MinPhotoW, MinPhotoH)}
	}
	return nil
}

// CheckLogoHeader is the intake check for an employer logo: JPEG or PNG,
// within the upload limits and at least 354x118 pixels (30x10 mm at 300 dpi).
func CheckLogoHeader(data []byte) error {
	h, err := parseHeader(data)
	if err != nil {
		return err
	}
	if w, ht := h.orientedSize(); w < MinLogoW || ht < MinLogoH {
		return &HeaderError{Code: CodeResolutionTooLow, Message: fmt.Sprintf(
			"the logo is %dx%d pixels; at least %dx%d pixels is required", w, ht, MinLogoW, MinLogoH)}
	}
	return nil
}

// parseJPEGHeader walks the marker segments up to the frame header, picking
// up the EXIF orientation on the way.
func parseJPEGHeader(data []byte) (header, *HeaderError) {
	h := header{format: formatJPEG, orientation: 1}
	i := 2
	for i < len(data) && i < maxHeaderScan {
		if data[i] != 0xFF {
			return h, unreadable("the JPEG file is damaged (bad marker)")
		}
		for i < len(data) && data[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(data) {
			break
		}
		m := data[i]
		i++
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) {
			continue
		}
		if m == 0xD9 || m == 0xDA {
			break // end of image or start of scan before any frame header
		}
		if i+2 > len(data) {
			break
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			break
		}
		seg := data[i+2 : i+n]
		i += n
		switch {
		case m == 0xE1 && len(seg) > 6 && string(seg[:6]) == "Exif\x00\x00":
			if o := exifOrientation(seg[6:]); o != 0 {
				h.orientation = o
			}
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC:
			if len(seg) < 6 {
				return h, unreadable("the JPEG file is damaged (short frame header)")
			}
			if m != 0xC0 && m != 0xC1 && m != 0xC2 {
				return h, unreadable("the JPEG file uses an unsupported coding (lossless or arithmetic); save it as a normal JPEG")
			}
			h.h = int(binary.BigEndian.Uint16(seg[1:]))
			h.w = int(binary.BigEndian.Uint16(seg[3:]))
			h.components = int(seg[5])
			if h.components != 1 && h.components != 3 && h.components != 4 {
				return h, unreadable("the JPEG file has %d colour components; 1, 3 or 4 are supported", h.components)
			}
			return h, nil
		}
	}
	return h, unreadable("the JPEG file is damaged or truncated (no frame header)")
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// parsePNGHeader reads IHDR and, if present before the image data, an eXIf
// chunk with the orientation.
func parsePNGHeader(data []byte) (header, *HeaderError) {
	h := header{format: formatPNG, orientation: 1}
	i := 8
	first := true
	for i+8 <= len(data) && i < maxHeaderScan {
		n := int(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		if n < 0 || n > len(data)-i-12 {
			break
		}
		body := data[i+8 : i+8+n]
		i += 12 + n
		if first {
			if typ != "IHDR" || n != 13 {
				return h, unreadable("the PNG file is damaged (no image header)")
			}
			h.w = int(binary.BigEndian.Uint32(body[0:]))
			h.h = int(binary.BigEndian.Uint32(body[4:]))
			if h.w < 0 || h.h < 0 || h.w > 1<<24 || h.h > 1<<24 {
				return h, &HeaderError{Code: CodeTooLarge, Message: "the PNG image dimensions are out of range"}
			}
			first = false
			continue
		}
		switch typ {
		case "eXIf":
			if o := exifOrientation(body); o != 0 {
				h.orientation = o
			}
		case "IDAT", "IEND":
			return h, nil
		}
	}
	if first {
		return h, unreadable("the PNG file is damaged or truncated")
	}
	return h, nil
}

// exifOrientation returns tag 0x0112 of IFD0 of a TIFF-structured EXIF block,
// or 0 when it is missing or invalid.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(tiff[2:]) != 42 {
		return 0
	}
	off := int64(bo.Uint32(tiff[4:]))
	if off < 8 || off+2 > int64(len(tiff)) {
		return 0
	}
	n := int64(bo.Uint16(tiff[off:]))
	for k := int64(0); k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > int64(len(tiff)) {
			return 0
		}
		if bo.Uint16(tiff[e:]) != 0x0112 {
			continue
		}
		// SHORT, count 1: the value sits in the first two bytes of the value field.
		if bo.Uint16(tiff[e+2:]) != 3 {
			return 0
		}
		if v := int(bo.Uint16(tiff[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 0
	}
	return 0
}
