package personalize

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"

	"golang.org/x/image/draw"

	"id06/personalize/apdu"
)

// elementMax is the largest value SP 800-73-4 part 1 (tables 8–14) allows
// for each element of the containers this profile writes.
var elementMax = map[uint]map[uint]int{
	objCert.Tag:         {0x70: 1858},
	objCardAuthCert.Tag: {0x70: 1858},
	objCHUID.Tag:        {0x3E: 3200},
	objCCC.Tag:          {0xF0: 21},
	objSecurity.Tag:     {0xBA: 30, 0xBB: 1298},
	objFacial.Tag:       {0xBC: 12704},
	objPrinted.Tag:      {0x01: 125, 0x02: 20, 0x04: 9, 0x05: 20, 0x06: 15, 0x07: 20, 0x08: 20},
}

// SizeError is an object larger than SP 800-73-4 or the card stock allows.
type SizeError struct {
	Object  string
	Element uint // the element over its SP 800-73-4 maximum; 0 = the whole object over the stock's limit
	Size    int
	Max     int
}

func (e *SizeError) Error() string {
	if e.Element == 0 {
		return fmt.Sprintf("%s is %d bytes, the card stock takes at most %d per object", e.Object, e.Size, e.Max)
	}
	return fmt.Sprintf("%s: element %X is %d bytes, SP 800-73-4 allows at most %d", e.Object, e.Element, e.Size, e.Max)
}

// checkSize checks a container (53 L value) against the standard's element
// maxima and the stock's per-object limit.
func (s StockProfile) checkSize(o object, c []byte) error {
	errs, err := s.sizeErrors(o, c)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return &errs[0]
	}
	return nil
}

// excess is by how many bytes container c is over its tightest limit (0
// when it fits).
func (s StockProfile) excess(o object, c []byte) int {
	errs, _ := s.sizeErrors(o, c)
	over := 0
	for _, e := range errs {
		over = max(over, e.Size-e.Max)
	}
	return over
}

func (s StockProfile) sizeErrors(o object, c []byte) ([]SizeError, error) {
	var errs []SizeError
	if s.MaxObject > 0 && len(c) > s.MaxObject {
		errs = append(errs, SizeError{Object: o.String(), Size: len(c), Max: s.MaxObject})
	}
	v, err := apdu.Unwrap(c, 0x53)
	if err != nil {
		return nil, fmt.Errorf("%s: not a 53 container: %w", o, err)
	}
	items, err := apdu.ParseTLV(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	for _, it := range items {
		if max, ok := elementMax[o.Tag][it.Tag]; ok && len(it.Value) > max {
			errs = append(errs, SizeError{Object: o.String(), Element: it.Tag, Size: len(it.Value), Max: max})
		}
	}
	return errs, nil
}

// Facial image recompression bounds: a portrait narrower than minFacialWidth
// no longer shows a face well enough to compare with the holder.
const (
	minFacialWidth   = 96
	minFacialQuality = 20
	maxFacialQuality = 90
)

// compressPortrait re-encodes a JPEG portrait as grayscale to at most budget
// bytes: the best quality at full size, else the best quality at the
// largest size that fits, down to minFacialWidth.
func compressPortrait(jpg []byte, budget int) ([]byte, error) {
	src, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		return nil, fmt.Errorf("facial image is not a JPEG: %w", err)
	}
	b := src.Bounds()
	w := float64(b.Dx())
	for int(w) >= minFacialWidth {
		gray := image.NewGray(image.Rect(0, 0, int(w), int(w*float64(b.Dy())/float64(b.Dx()))))
		draw.CatmullRom.Scale(gray, gray.Bounds(), src, b, draw.Src, nil)
		smallest, err := encodeJPEG(gray, minFacialQuality)
		if err != nil {
			return nil, err
		}
		if len(smallest) > budget {
			// A JPEG's size goes roughly with its pixel count: shrink by
			// the square root of the ratio, and at least a little.
			w *= min(0.97, math.Sqrt(float64(budget)/float64(len(smallest))))
			continue
		}
		return bestQuality(gray, budget, smallest)
	}
	return nil, fmt.Errorf("the portrait does not fit in %d bytes even at %d px wide and JPEG quality %d", budget, minFacialWidth, minFacialQuality)
}

// bestQuality finds by bisection the highest JPEG quality whose encoding
// fits budget (the size grows with the quality); floor is the encoding at
// minFacialQuality, known to fit.
func bestQuality(img image.Image, budget int, floor []byte) ([]byte, error) {
	best := floor
	lo, hi := minFacialQuality+1, maxFacialQuality
	for lo <= hi {
		q := (lo + hi) / 2
		b, err := encodeJPEG(img, q)
		if err != nil {
			return nil, err
		}
		if len(b) <= budget {
			best, lo = b, q+1
		} else {
			hi = q - 1
		}
	}
	return best, nil
}

func encodeJPEG(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality})
	return buf.Bytes(), err
}
