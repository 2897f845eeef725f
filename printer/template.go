// Package printer lays out the ID06 card face (PDF for the printer, PNG for
// people) from an editable template, drives card printers (hot folder, IPP,
// simulator) and produces packing lists for shipments.
package printer

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

//go:embed default_template.json
var defaultTemplateJSON []byte

// TemplateVersion is the only template format version this station reads.
const TemplateVersion = 1

// Card types a template may target with card_types.
var cardTypes = []string{"id06", "visitor", "temporary"}

// Template is the card face as data: positions in mm from the top-left
// corner of the card, fonts in points. Suppliers edit it as JSON.
type Template struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Card    CardSize  `json:"card"`
	Front   []Element `json:"front"`
	Back    []Element `json:"back"`
}

// CardSize is the physical card; ISO/IEC 7810 ID-1 in the default template.
type CardSize struct {
	WidthMM        float64 `json:"width_mm"`
	HeightMM       float64 `json:"height_mm"`
	CornerRadiusMM float64 `json:"corner_radius_mm"`
}

// Element is one thing drawn on a side of the card.
//
// Kinds:
//   - "text": Text with {placeholders}, wrapped onto up to MaxLines lines and
//     shrunk in 0.5 pt steps from SizePt down to MinSizePt until it fits the box;
//   - "image": Source "portrait" or "logo", fitted into the box keeping its aspect;
//   - "qr": a QR code of Text, square, centred in the box;
//   - "band": a filled box (FillGray) with centred Text (TextGray), drawn only
//     for the CardTypes listed.
type Element struct {
	Kind      string   `json:"kind"`
	Text      string   `json:"text,omitempty"`
	Source    string   `json:"source,omitempty"`
	X         float64  `json:"x"`
	Y         float64  `json:"y"`
	W         float64  `json:"w"`
	H         float64  `json:"h"`
	Font      string   `json:"font,omitempty"`
	SizePt    float64  `json:"size_pt,omitempty"`
	MinSizePt float64  `json:"min_size_pt,omitempty"`
	MaxLines  int      `json:"max_lines,omitempty"`
	Align     string   `json:"align,omitempty"`
	BorderMM  float64  `json:"border_mm,omitempty"`
	CardTypes []string `json:"card_types,omitempty"`
	FillGray  int      `json:"fill_gray,omitempty"`
	TextGray  int      `json:"text_gray,omitempty"`
}

// Placeholders a text may use, filled from the Card.
var placeholders = []string{"print_name", "company", "org_number", "card_number", "valid_until", "issuer"}

var placeholderRE = regexp.MustCompile(`\{([A-Za-z0-9_]*)\}`)

// DefaultTemplate returns the embedded default ID06 template (docs/design.md §5).
func DefaultTemplate() *Template {
	t, err := parseTemplate(bytes.NewReader(defaultTemplateJSON))
	if err != nil {
		// The embedded file is covered by tests; reaching this is a build defect.
		panic("printer: embedded default template is invalid: " + err.Error())
	}
	return t
}

// LoadTemplate reads and checks a template file. The error names the file
// and the field that is wrong, e.g. `front[4].size_pt: …`.
func LoadTemplate(path string) (*Template, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("card template: %w", err)
	}
	defer f.Close()
	t, err := parseTemplate(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("card template %s: %w", path, err)
	}
	return t, nil
}

func parseTemplate(r io.Reader) (*Template, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var t Template
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("not a valid template: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a valid template: extra data after the JSON object")
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *Template) validate() error {
	if t.Version != TemplateVersion {
		return fmt.Errorf("version: %d is not supported; this station reads version %d", t.Version, TemplateVersion)
	}
	c := t.Card
	if c.WidthMM <= 0 || c.WidthMM > 200 {
		return fmt.Errorf("card.width_mm: %g is out of range (0, 200]", c.WidthMM)
	}
	if c.HeightMM <= 0 || c.HeightMM > 200 {
		return fmt.Errorf("card.height_mm: %g is out of range (0, 200]", c.HeightMM)
	}
	if c.CornerRadiusMM < 0 || c.CornerRadiusMM > min(c.WidthMM, c.HeightMM)/2 {
		return fmt.Errorf("card.corner_radius_mm: %g is out of range [0, %g]", c.CornerRadiusMM, min(c.WidthMM, c.HeightMM)/2)
	}
	if len(t.Front) == 0 {
		return errors.New("front: the front side has no elements")
	}
	for i := range t.Front {
		if err := t.validateElement(&t.Front[i]); err != nil {
			return fmt.Errorf("front[%d].%w", i, err)
		}
	}
	for i := range t.Back {
		if err := t.validateElement(&t.Back[i]); err != nil {
			return fmt.Errorf("back[%d].%w", i, err)
		}
	}
	if t.nameElement() == nil {
		return errors.New("front: no text element shows {print_name}; the holder's name must be on the card")
	}
	if !slices.ContainsFunc(t.Front, func(e Element) bool { return e.Kind == "image" && e.Source == "portrait" }) {
		return errors.New(`front: no image element with source "portrait"; the photo must be on the card`)
	}
	return nil
}

// validateElement returns errors starting with the field name, so that the
// caller can prefix the element path.
func (t *Template) validateElement(e *Element) error {
	const eps = 0.005
	if e.X < 0 || e.Y < 0 || e.W <= 0 || e.H <= 0 {
		return fmt.Errorf("x: box (%g, %g, %g x %g) must have x, y >= 0 and w, h > 0", e.X, e.Y, e.W, e.H)
	}
	if e.X+e.W > t.Card.WidthMM+eps {
		return fmt.Errorf("w: box ends at x=%g mm, beyond the card width %g mm", e.X+e.W, t.Card.WidthMM)
	}
	if e.Y+e.H > t.Card.HeightMM+eps {
		return fmt.Errorf("h: box ends at y=%g mm, beyond the card height %g mm", e.Y+e.H, t.Card.HeightMM)
	}
	for _, ct := range e.CardTypes {
		if !slices.Contains(cardTypes, ct) {
			return fmt.Errorf("card_types: unknown card type %q (want one of %s)", ct, strings.Join(cardTypes, ", "))
		}
	}
	switch e.Kind {
	case "text", "band":
		if err := checkText(e.Text); err != nil {
			return err
		}
		if e.Font != "regular" && e.Font != "bold" {
			return fmt.Errorf("font: unknown font %q (want regular or bold)", e.Font)
		}
		if e.SizePt < 4 || e.SizePt > 40 {
			return fmt.Errorf("size_pt: %g is out of range [4, 40]", e.SizePt)
		}
		if e.MinSizePt != 0 && (e.MinSizePt < 4 || e.MinSizePt > e.SizePt) {
			return fmt.Errorf("min_size_pt: %g must be between 4 and size_pt (%g)", e.MinSizePt, e.SizePt)
		}
		if e.MaxLines < 0 || e.MaxLines > 20 {
			return fmt.Errorf("max_lines: %d is out of range [0, 20]", e.MaxLines)
		}
		if e.Align != "" && e.Align != "left" && e.Align != "center" && e.Align != "right" {
			return fmt.Errorf("align: unknown alignment %q (want left, center or right)", e.Align)
		}
		if e.BorderMM < 0 || e.BorderMM > 2 {
			return fmt.Errorf("border_mm: %g is out of range [0, 2]", e.BorderMM)
		}
		if e.FillGray < 0 || e.FillGray > 255 {
			return fmt.Errorf("fill_gray: %d is out of range [0, 255]", e.FillGray)
		}
		if e.TextGray < 0 || e.TextGray > 255 {
			return fmt.Errorf("text_gray: %d is out of range [0, 255]", e.TextGray)
		}
		if e.Kind == "band" && len(e.CardTypes) == 0 {
			return errors.New("card_types: a band must name the card types it is drawn for")
		}
	case "image":
		if e.Source != "portrait" && e.Source != "logo" {
			return fmt.Errorf("source: unknown image source %q (want portrait or logo)", e.Source)
		}
	case "qr":
		if err := checkText(e.Text); err != nil {
			return err
		}
	default:
		return fmt.Errorf("kind: unknown element kind %q (want text, image, qr or band)", e.Kind)
	}
	return nil
}

func checkText(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("text: must not be empty")
	}
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		if !slices.Contains(placeholders, m[1]) {
			return fmt.Errorf("text: unknown placeholder {%s} (known: {%s})", m[1], strings.Join(placeholders, "}, {"))
		}
	}
	return nil
}

// nameElement is the text element that carries the name on print.
func (t *Template) nameElement() *Element {
	for i := range t.Front {
		e := &t.Front[i]
		if e.Kind == "text" && strings.Contains(e.Text, "{print_name}") {
			return e
		}
	}
	return nil
}

// drawnFor reports whether the element belongs on a card of this type.
func (e *Element) drawnFor(cardType string) bool {
	return len(e.CardTypes) == 0 || slices.Contains(e.CardTypes, cardType)
}
