package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Upload limits (docs/design.md §4, ID06 portal rules).
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
	progressive bool
	sampling    [4][2]int // JPEG: horizontal and vertical sampling factor per component
	buffered    bool      // JPEG: decoders must hold every coefficient (progressive, or scans per component)
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
		// Exact counts: rounded to megapixels, an image just over the limit
		// would read "50.0 megapixels; at most 50".
		return header{}, &HeaderError{Code: CodeTooLarge, Message: fmt.Sprintf(
			"the image is %dx%d = %s pixels; at most %s pixels (50 megapixels) are accepted: scale it down",
			h.w, h.h, grouped(int64(h.w)*int64(h.h)), grouped(MaxPixels))}
	}
	var cerr error
	if h.format == formatJPEG {
		cerr = checkJPEGStructure(data, &h)
	} else {
		cerr = pngChunks(data, nil)
	}
	if cerr != nil {
		return header{}, unreadable("the file is incomplete or damaged (%v); upload the original file again", cerr)
	}
	return h, nil
}

// CheckPhotoHeader is the cheap intake check for a portrait upload: JPEG or
// PNG, complete and undamaged as far as its structure shows (see
// checkJPEGStructure and pngChunks), at most 20 MB and 50 megapixels, within
// the memory a photo may take to decode, and at least 300x410 pixels after
// EXIF orientation. It returns a *HeaderError or nil.
func CheckPhotoHeader(data []byte) error {
	return checkHeader(data, "photo", firstDenom, MinPhotoW, MinPhotoH)
}

// CheckLogoHeader is the intake check for an employer logo: JPEG or PNG,
// complete, within the upload limits and the memory its decode may take,
// and at least 354x118 pixels (30x10 mm at 300 dpi).
func CheckLogoHeader(data []byte) error {
	return checkHeader(data, "logo", logoDenom, MinLogoW, MinLogoH)
}

// checkHeader is the intake check both uploads share: what names the image
// in the message, denom picks the decode scale whose memory counts, and the
// image must be at least minW x minH pixels after EXIF orientation.
func checkHeader(data []byte, what string, denom func(header) int, minW, minH int) error {
	h, err := parseHeader(data)
	if err != nil {
		return err
	}
	if err := checkCost(h, denom(h)); err != nil {
		return err
	}
	if w, ht := h.orientedSize(); w < minW || ht < minH {
		return &HeaderError{Code: CodeResolutionTooLow, Message: fmt.Sprintf(
			"the %s is %dx%d pixels; at least %dx%d pixels is required", what, w, ht, minW, minH)}
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
			h.progressive = m == 0xC2
			if h.components != 1 && h.components != 3 && h.components != 4 {
				return h, unreadable("the JPEG file has %d colour components; 1, 3 or 4 are supported", h.components)
			}
			if len(seg) < 6+3*h.components {
				return h, unreadable("the JPEG file is damaged (short frame header)")
			}
			for c := 0; c < h.components; c++ {
				hv := seg[6+3*c+1]
				h.sampling[c] = [2]int{int(hv >> 4), int(hv & 15)}
				if hv>>4 < 1 || hv>>4 > 4 || hv&15 < 1 || hv&15 > 4 {
					return h, unreadable("the JPEG file is damaged (sampling factors %#x)", hv)
				}
			}
			return h, nil
		}
	}
	return h, unreadable("the JPEG file is damaged or truncated (no frame header)")
}

// checkJPEGStructure walks every marker segment and entropy-coded segment
// from SOI to EOI. A file cut short has lost its EOI, and stray bytes
// where a marker belongs are what libjpeg reports as corrupt data, so both
// are refused without decoding a pixel; bytes after EOI are allowed (some
// cameras append data there). A damaged entropy segment in a complete file
// has no such sign (JPEG has no checksum): the decoder finds it in the
// photo stage. The walk is a bytes.IndexByte search for each 0xFF in the
// file (BenchmarkIntakeCheck: about 0.3 ms for a 300 KB portrait, a 1/8
// decode would take 10 ms). It also records whether the first scan holds every component; if
// not, as in a progressive file, decoders buffer the whole image.
func checkJPEGStructure(data []byte, h *header) error {
	errEnd := errors.New("the JPEG data ends before its end-of-image marker")
	scans := 0
	for i := 2; ; {
		if i >= len(data) {
			return errEnd
		}
		if data[i] != 0xFF {
			return fmt.Errorf("stray bytes at offset %d where a JPEG marker belongs", i)
		}
		for i < len(data) && data[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(data) {
			return errEnd
		}
		m := data[i]
		i++
		switch {
		case m == 0xD9:
			if scans == 0 {
				return errors.New("the JPEG file has no image data")
			}
			return nil
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7): // TEM, RSTn: no length
			continue
		case m == 0x00 || m == 0xD8:
			return fmt.Errorf("misplaced JPEG marker 0x%02X at offset %d", m, i-1)
		}
		if i+2 > len(data) {
			return errEnd
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			return errEnd
		}
		seg := data[i+2 : i+n]
		i += n
		if m != 0xDA {
			continue
		}
		if len(seg) < 1 {
			return errors.New("empty JPEG scan header")
		}
		if scans == 0 {
			h.buffered = h.progressive || int(seg[0]) < h.components
		}
		scans++
		// Entropy-coded data runs to the next marker: 0xFF followed by
		// anything but a stuffed 0x00, a restart marker or more fill.
		if i = nextMarker(data, i); i < 0 {
			return errEnd
		}
	}
}

// nextMarker returns the index of the 0xFF that starts the marker ending
// the entropy-coded data at data[i:], or -1 if the data ends first.
func nextMarker(data []byte, i int) int {
	for {
		k := bytes.IndexByte(data[i:], 0xFF)
		if k < 0 {
			return -1
		}
		j := i + k + 1
		for j < len(data) && data[j] == 0xFF {
			j++
		}
		if j >= len(data) {
			return -1
		}
		if b := data[j]; b != 0x00 && (b < 0xD0 || b > 0xD7) {
			return j - 1 // the last 0xFF before the marker
		}
		i = j + 1
	}
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

// grouped writes n with thousands separators: 50013184 → "50,013,184".
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
