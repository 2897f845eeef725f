package printer

import (
	"bytes"
	"testing"
)

// FuzzTemplate: any template either is refused with an error or renders a
// card (or refuses the card with an error); nothing panics.
func FuzzTemplate(f *testing.F) {
	f.Add(defaultTemplateJSON)
	f.Add(bytes.Replace(defaultTemplateJSON, []byte(`"w": 22, "h": 22`), []byte(`"w": 0.5, "h": 0.5`), 1))
	f.Add(bytes.Replace(defaultTemplateJSON, []byte(`"h": 8.5`), []byte(`"h": 0.01`), 1))
	f.Add(bytes.Replace(defaultTemplateJSON, []byte(`"w": 25.40`), []byte(`"w": 0.001`), 1))
	f.Add([]byte(`{"version":1,"card":{"width_mm":1,"height_mm":1},"front":[]}`))
	card := goldenCard()
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := parseTemplate(bytes.NewReader(data))
		if err != nil {
			return
		}
		face, err := Render(tpl, card)
		if err == nil && (len(face.PDF) == 0 || len(face.FrontPNG) == 0 || len(face.BackPNG) == 0) {
			t.Fatal("Render succeeded with empty output")
		}
	})
}
