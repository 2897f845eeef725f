package printer

import (
	"fmt"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// The Go fonts cover WGL4 (Swedish, Polish and the rest of Latin Extended-A)
// and are BSD-licensed, so they may be embedded in every PDF.
const (
	fontRegular = "regular"
	fontBold    = "bold"
)

var fontTTF = map[string][]byte{fontRegular: goregular.TTF, fontBold: gobold.TTF}

// metrics holds what the layout needs from a font, in em units, so that the
// PDF and the PNG share one measurement of every string.
type metrics struct {
	font    *sfnt.Font
	unitsEm float64
	advance map[rune]float64 // in em
	ascent  float64          // in em
	descent float64          // in em, positive
}

var loadMetrics = sync.OnceValues(func() (map[string]*metrics, error) {
	out := map[string]*metrics{}
	for name, ttf := range fontTTF {
		f, err := opentype.Parse(ttf)
		if err != nil {
			return nil, fmt.Errorf("font %s: %w", name, err)
		}
		upem := float64(f.UnitsPerEm())
		var buf sfnt.Buffer
		// Metrics at ppem = unitsPerEm give values in font units.
		m, err := f.Metrics(&buf, fixed.I(int(upem)), font.HintingNone)
		if err != nil {
			return nil, fmt.Errorf("font %s metrics: %w", name, err)
		}
		out[name] = &metrics{
			font:    f,
			unitsEm: upem,
			advance: map[rune]float64{},
			ascent:  float64(m.Ascent) / 64 / upem,
			descent: float64(m.Descent) / 64 / upem,
		}
	}
	return out, nil
})

// measurer measures strings for one render; it is not safe for concurrent use.
type measurer struct {
	fonts map[string]*metrics
	buf   sfnt.Buffer
	cache map[string]map[rune]float64
}

func newMeasurer() (*measurer, error) {
	fs, err := loadMetrics()
	if err != nil {
		return nil, err
	}
	return &measurer{fonts: fs, cache: map[string]map[rune]float64{}}, nil
}

// widthMM is the advance width of s set in font at sizePt, without kerning
// (neither renderer kerns).
func (m *measurer) widthMM(fontName, s string, sizePt float64) (float64, error) {
	f := m.fonts[fontName]
	c := m.cache[fontName]
	if c == nil {
		c = map[rune]float64{}
		m.cache[fontName] = c
	}
	var em float64
	for _, r := range s {
		adv, ok := c[r]
		if !ok {
			idx, err := f.font.GlyphIndex(&m.buf, r)
			if err != nil {
				return 0, err
			}
			if idx == 0 {
				return 0, fmt.Errorf("the card font has no letter %q (U+%04X)", r, r)
			}
			a, err := f.font.GlyphAdvance(&m.buf, idx, fixed.I(int(f.unitsEm)), font.HintingNone)
			if err != nil {
				return 0, err
			}
			adv = float64(a) / 64 / f.unitsEm
			c[r] = adv
		}
		em += adv
	}
	return em * sizePt * mmPerPt, nil
}

// checkPrintable refuses control characters and letters the fonts lack, in
// words an operator can act on.
func (m *measurer) checkPrintable(what, s string) error {
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%s contains a control or invalid character (U+%04X)", what, r)
		}
	}
	for _, name := range []string{fontRegular, fontBold} {
		if _, err := m.widthMM(name, s, 1); err != nil {
			return fmt.Errorf("%s %q cannot be printed: %w", what, s, err)
		}
	}
	return nil
}

const mmPerPt = 25.4 / 72

// wrap breaks s into lines no wider than w mm, breaking at spaces and after
// hyphens. ok is false when a single word is wider than w.
func (m *measurer) wrap(fontName, s string, sizePt, w float64) (lines []string, ok bool, err error) {
	var pieces []string
	start := 0
	for i, r := range s {
		if r == ' ' || r == '-' {
			pieces = append(pieces, s[start:i+1])
			start = i + 1
		}
	}
	if start < len(s) {
		pieces = append(pieces, s[start:])
	}
	var cur string
	for _, p := range pieces {
		cand := cur + p
		cw, err := m.widthMM(fontName, strings.TrimRight(cand, " "), sizePt)
		if err != nil {
			return nil, false, err
		}
		if cw <= w {
			cur = cand
			continue
		}
		if cur == "" {
			return nil, false, nil // one word wider than the box
		}
		lines = append(lines, strings.TrimRight(cur, " "))
		cur = p
		pw, err := m.widthMM(fontName, strings.TrimRight(p, " "), sizePt)
		if err != nil {
			return nil, false, err
		}
		if pw > w {
			return nil, false, nil
		}
	}
	if strings.TrimSpace(cur) != "" {
		lines = append(lines, strings.TrimRight(cur, " "))
	}
	return lines, true, nil
}

// noKern keeps the PNG glyph positions identical to the PDF's, which has no
// kerning.
type noKern struct{ font.Face }

func (noKern) Kern(_, _ rune) fixed.Int26_6 { return 0 }

// faces builds x/image faces at 300 dpi for the PNG preview; one per
// raster, since a face is not safe for concurrent use.
type faces struct {
	fonts map[string]*metrics
	m     map[faceKey]font.Face
}

type faceKey struct {
	font   string
	sizePt float64
}

func (f *faces) face(fontName string, sizePt float64) (font.Face, error) {
	key := faceKey{fontName, sizePt}
	if fc, ok := f.m[key]; ok {
		return fc, nil
	}
	fc, err := opentype.NewFace(f.fonts[fontName].font, &opentype.FaceOptions{Size: sizePt, DPI: dpi, Hinting: font.HintingNone})
	if err != nil {
		return nil, err
	}
	f.m[key] = noKern{fc}
	return f.m[key], nil
}
