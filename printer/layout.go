package printer

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/boombuler/barcode/qr"
)

// Card is what goes on one card face.
type Card struct {
	CardType   string // "id06", "visitor", "temporary"
	PrintName  string // name on print
	Company    string
	OrgNumber  string // "556677-8899"
	CardNumber string // "BB-1234-567890"
	Issuer     string // card supplier's name for the back
	ValidUntil time.Time
	Portrait   image.Image // 300x380 gray from the photo stage
	Logo       image.Image // nil when the company has none; already fitted to 354x118
	ColorLogo  bool
}

// The layout model: both renderers draw exactly these operations, so the
// PDF and the PNG cannot drift apart. Units are mm; text y is the baseline.
type opKind int

const (
	opFill   opKind = iota // filled box
	opStroke               // box outline of width stroke, drawn inside the box
	opText                 // one line of text starting at (x, y=baseline)
	opImage                // image scaled into the box
)

type op struct {
	kind       opKind
	x, y, w, h float64
	gray       uint8 // fill, stroke or text colour
	stroke     float64
	text       string
	font       string
	sizePt     float64
	img        image.Image // *image.Gray, or *image.RGBA for a colour logo
	imgName    string
}

type layout struct {
	w, h, radius float64
	sides        [2][]op // front, back
}

const lineSpacing = 1.2 // line height as a multiple of the font size

// ErrNameTooLong is wrapped by CheckName and Render when the name on print
// does not fit the card even at the smallest size.
var ErrNameTooLong = errors.New("name on print does not fit the card")

// CheckName reports whether the name on print fits the card: bold, on up to
// two lines, shrinking from 9 to 6 pt in the default template. The error
// says what to do, for a 422 at intake.
func (t *Template) CheckName(printName string) error {
	m, err := newMeasurer()
	if err != nil {
		return err
	}
	e := t.nameElement()
	if e == nil {
		return errors.New("card template has no {print_name} element")
	}
	text := cleanSpaces(printName)
	if text == "" {
		return errors.New("name on print is empty")
	}
	if err := m.checkPrintable("name on print", text); err != nil {
		return err
	}
	if _, _, err := fitText(m, e, fill(e.Text, map[string]string{"print_name": text})); err != nil {
		return err
	}
	return nil
}

// fitText wraps and shrinks s into e's box. The error for the name on print
// wraps ErrNameTooLong.
func fitText(m *measurer, e *Element, s string) (lines []string, sizePt float64, err error) {
	maxLines := max(e.MaxLines, 1)
	minSize := e.MinSizePt
	if minSize == 0 {
		minSize = e.SizePt
	}
	// Steps of 0.5 pt from the template size down to the minimum.
	for size := e.SizePt; size >= minSize-1e-9; size -= 0.5 {
		lineH := size * mmPerPt * lineSpacing
		n := min(maxLines, int((e.H+0.01)/lineH))
		if n < 1 {
			continue
		}
		var ok bool
		if n == 1 {
			var w float64
			w, err = m.widthMM(e.Font, s, size)
			if err != nil {
				return nil, 0, err
			}
			lines, ok = []string{s}, w <= e.W
		} else {
			lines, ok, err = m.wrap(e.Font, s, size, e.W)
			if err != nil {
				return nil, 0, err
			}
			ok = ok && len(lines) <= n
		}
		if ok {
			return lines, size, nil
		}
	}
	if strings.Contains(e.Text, "{print_name}") {
		return nil, 0, fmt.Errorf("%w: %q is too long for %d line(s) at %g pt; shorten it, e.g. use an initial for a middle name", ErrNameTooLong, s, maxLines, minSize)
	}
	return nil, 0, fmt.Errorf("text %q does not fit its %gx%g mm box at %g pt", s, e.W, e.H, minSize)
}

// cleanSpaces trims and collapses runs of spaces, which would otherwise
// widen the text; other whitespace is left for checkPrintable to refuse.
func cleanSpaces(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
}

func fill(text string, values map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(text, func(p string) string {
		return values[p[1:len(p)-1]]
	})
}

// buildLayout turns a template and a card into drawing operations.
func (t *Template) buildLayout(c Card) (*layout, error) {
	if !slices.Contains(cardTypes, c.CardType) {
		return nil, fmt.Errorf("card type %q is unknown (want one of %s)", c.CardType, strings.Join(cardTypes, ", "))
	}
	m, err := newMeasurer()
	if err != nil {
		return nil, err
	}
	values := map[string]string{
		"print_name":  cleanSpaces(c.PrintName),
		"company":     cleanSpaces(c.Company),
		"org_number":  cleanSpaces(c.OrgNumber),
		"card_number": cleanSpaces(c.CardNumber),
		"issuer":      cleanSpaces(c.Issuer),
	}
	if !c.ValidUntil.IsZero() {
		values["valid_until"] = c.ValidUntil.Format(time.DateOnly)
	}
	for _, k := range placeholders {
		if values[k] == "" && t.uses(k, c.CardType) {
			return nil, fmt.Errorf("card field %s is empty but the template prints it", k)
		}
		if err := m.checkPrintable(strings.ReplaceAll(k, "_", " "), values[k]); err != nil {
			return nil, err
		}
	}
	portrait, err := preparePortrait(c.Portrait)
	if err != nil {
		return nil, err
	}
	var logo image.Image
	if c.Logo != nil {
		if b := c.Logo.Bounds(); b.Dx() < 10 || b.Dy() < 10 {
			return nil, fmt.Errorf("logo is %dx%d px; the logo stage delivers 354x118", b.Dx(), b.Dy())
		}
		logo = flatten(c.Logo, c.ColorLogo)
	}

	l := &layout{w: t.Card.WidthMM, h: t.Card.HeightMM, radius: t.Card.CornerRadiusMM}
	for side, elems := range [2][]Element{t.Front, t.Back} {
		for i := range elems {
			e := &elems[i]
			if !e.drawnFor(c.CardType) {
				continue
			}
			var ops []op
			switch e.Kind {
			case "text", "band":
				ops, err = textOps(m, e, fill(e.Text, values))
			case "image":
				img, name := portrait, "portrait"
				if e.Source == "logo" {
					img, name = logo, "logo"
				}
				if img != nil {
					ops = []op{imageOp(e, img, name)}
				}
			case "qr":
				ops, err = qrOps(e, fill(e.Text, values))
			}
			if err != nil {
				return nil, err
			}
			l.sides[side] = append(l.sides[side], ops...)
		}
	}
	return l, nil
}

// uses reports whether a placeholder is printed on a card of this type.
func (t *Template) uses(key, cardType string) bool {
	for _, elems := range [][]Element{t.Front, t.Back} {
		for _, e := range elems {
			if e.drawnFor(cardType) && strings.Contains(e.Text, "{"+key+"}") {
				return true
			}
		}
	}
	return false
}

func textOps(m *measurer, e *Element, s string) ([]op, error) {
	lines, size, err := fitText(m, e, s)
	if err != nil {
		return nil, err
	}
	var ops []op
	if e.Kind == "band" {
		ops = append(ops, op{kind: opFill, x: e.X, y: e.Y, w: e.W, h: e.H, gray: uint8(e.FillGray)})
	}
	if e.BorderMM > 0 {
		ops = append(ops, op{kind: opStroke, x: e.X, y: e.Y, w: e.W, h: e.H, stroke: e.BorderMM, gray: uint8(e.TextGray)})
	}
	f := m.fonts[e.Font]
	lineH := size * mmPerPt * lineSpacing
	top := e.Y
	if e.Kind == "band" || e.BorderMM > 0 {
		top += (e.H - float64(len(lines))*lineH) / 2 // centre the block vertically
	}
	// Centre the glyphs' ascent+descent inside each line box.
	firstBase := top + (lineH-(f.ascent+f.descent)*size*mmPerPt)/2 + f.ascent*size*mmPerPt
	for i, line := range lines {
		w, err := m.widthMM(e.Font, line, size)
		if err != nil {
			return nil, err
		}
		x := e.X
		switch e.Align {
		case "center":
			x += (e.W - w) / 2
		case "right":
			x += e.W - w
		}
		ops = append(ops, op{kind: opText, x: x, y: firstBase + float64(i)*lineH, text: line, font: e.Font, sizePt: size, gray: uint8(e.TextGray)})
	}
	return ops, nil
}

// imageOp fits img into the element box, keeping its aspect, centred.
func imageOp(e *Element, img image.Image, name string) op {
	b := img.Bounds()
	scale := min(e.W/float64(b.Dx()), e.H/float64(b.Dy()))
	w, h := float64(b.Dx())*scale, float64(b.Dy())*scale
	return op{kind: opImage, x: e.X + (e.W-w)/2, y: e.Y + (e.H-h)/2, w: w, h: h, img: img, imgName: name}
}

// qrOps draws the QR code as filled runs of dark modules, so the PDF keeps
// it as sharp vectors. The box includes the 4-module quiet zone.
func qrOps(e *Element, text string) ([]op, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("QR code of %q: %w", text, err)
	}
	n := code.Bounds().Dx()
	side := min(e.W, e.H)
	// Whole 300 dpi pixels per module on the pixel grid: card printers are
	// 300 dpi, and fractional modules would show seams between the runs.
	modPx := math.Floor(side * pxPerMM / float64(n+8))
	if modPx < 1 {
		return nil, fmt.Errorf("QR code box %gx%g mm is too small for %q", e.W, e.H, text)
	}
	mod := modPx / pxPerMM
	codeMM := float64(n+8) * mod
	bx := math.Round((e.X+(e.W-codeMM)/2)*pxPerMM) / pxPerMM
	by := math.Round((e.Y+(e.H-codeMM)/2)*pxPerMM) / pxPerMM
	x0, y0 := bx+4*mod, by+4*mod
	ops := []op{{kind: opFill, x: bx, y: by, w: codeMM, h: codeMM, gray: 255}}
	for row := 0; row < n; row++ {
		for col := 0; col < n; {
			if !isDark(code.At(col, row)) {
				col++
				continue
			}
			start := col
			for col < n && isDark(code.At(col, row)) {
				col++
			}
			ops = append(ops, op{kind: opFill, x: x0 + float64(start)*mod, y: y0 + float64(row)*mod, w: float64(col-start) * mod, h: mod})
		}
	}
	return ops, nil
}

func isDark(c color.Color) bool {
	return color.GrayModel.Convert(c).(color.Gray).Y < 128
}

// preparePortrait checks the portrait from the photo stage and makes it gray
// (the card photo is laser engraved).
func preparePortrait(img image.Image) (image.Image, error) {
	if img == nil {
		return nil, errors.New("portrait is missing")
	}
	b := img.Bounds()
	if b.Dx() < 100 || b.Dy() < 100 {
		return nil, fmt.Errorf("portrait is %dx%d px; the photo stage delivers 300x380", b.Dx(), b.Dy())
	}
	// The box is 25.40 x 32.17 mm (300:380); a different aspect would distort.
	if a := float64(b.Dx()) / float64(b.Dy()); math.Abs(a-300.0/380) > 0.02 {
		return nil, fmt.Errorf("portrait is %dx%d px, not the 300:380 aspect of the photo box", b.Dx(), b.Dy())
	}
	return flatten(img, false), nil
}

// flatten composes img over white (the card is white), in gray unless colour
// is wanted, with bounds starting at (0, 0).
func flatten(img image.Image, colour bool) image.Image {
	b := img.Bounds()
	rect := image.Rect(0, 0, b.Dx(), b.Dy())
	rgba := image.NewRGBA(rect)
	draw.Draw(rgba, rect, image.White, image.Point{}, draw.Src)
	draw.Draw(rgba, rect, img, b.Min, draw.Over)
	if colour {
		return rgba
	}
	gray := image.NewGray(rect)
	draw.Draw(gray, rect, rgba, image.Point{}, draw.Src)
	return gray
}
