package printer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultTemplate(t *testing.T) {
	tpl := DefaultTemplate()
	if tpl.Card.WidthMM != 85.60 || tpl.Card.HeightMM != 53.98 || tpl.Card.CornerRadiusMM != 3.18 {
		t.Errorf("default card is %+v, want ISO/IEC 7810 ID-1 85.60 x 53.98 mm, r 3.18", tpl.Card)
	}
	var photo *Element
	for i := range tpl.Front {
		if tpl.Front[i].Source == "portrait" {
			photo = &tpl.Front[i]
		}
	}
	if photo == nil || photo.X != 4 || photo.Y != 12 || photo.W != 25.40 || photo.H != 32.17 {
		t.Errorf("photo box = %+v, want 25.40 x 32.17 at (4, 12)", photo)
	}
	// A template written back out and loaded again is the same template.
	data, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "t.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := LoadTemplate(p)
	if err != nil {
		t.Fatalf("default template does not load back: %v", err)
	}
	if len(again.Front) != len(tpl.Front) || len(again.Back) != len(tpl.Back) {
		t.Error("reloaded template lost elements")
	}
}

// TestLoadTemplateRefuses: a broken template names the wrong field.
func TestLoadTemplateRefuses(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		raw     string
		wantErr string
	}{
		{name: "not JSON", raw: "{version: 1", wantErr: "not a valid template"},
		{name: "unknown field", edit: func(m map[string]any) { front(m, 4)["sise_pt"] = 9 }, wantErr: `unknown field "sise_pt"`},
		{name: "wrong type", edit: func(m map[string]any) { front(m, 4)["size_pt"] = "nine" }, wantErr: "size_pt"},
		{name: "version", edit: func(m map[string]any) { m["version"] = 2 }, wantErr: "version: 2 is not supported"},
		{name: "card width", edit: func(m map[string]any) { m["card"].(map[string]any)["width_mm"] = 0 }, wantErr: "card.width_mm"},
		{name: "font", edit: func(m map[string]any) { front(m, 4)["font"] = "italic" }, wantErr: `front[4].font: unknown font "italic"`},
		{name: "size", edit: func(m map[string]any) { front(m, 4)["size_pt"] = 90 }, wantErr: "front[4].size_pt: 90 is out of range"},
		{name: "min size", edit: func(m map[string]any) { front(m, 4)["min_size_pt"] = 12 }, wantErr: "front[4].min_size_pt"},
		{name: "off the card", edit: func(m map[string]any) { front(m, 4)["x"] = 70 }, wantErr: "front[4].w: box ends at x=120"},
		{name: "placeholder", edit: func(m map[string]any) { front(m, 6)["text"] = "Org.nr {orgnr}" }, wantErr: "front[6].text: unknown placeholder {orgnr}"},
		{name: "kind", edit: func(m map[string]any) { front(m, 0)["kind"] = "circle" }, wantErr: `front[0].kind: unknown element kind "circle"`},
		{name: "image source", edit: func(m map[string]any) { front(m, 1)["source"] = "signature" }, wantErr: "front[1].source"},
		{name: "card type", edit: func(m map[string]any) { front(m, 9)["card_types"] = []string{"guest"} }, wantErr: `front[9].card_types: unknown card type "guest"`},
		{name: "band without types", edit: func(m map[string]any) { delete(front(m, 9), "card_types") }, wantErr: "front[9].card_types: a band must name"},
		{name: "back element", edit: func(m map[string]any) { m["back"].([]any)[3].(map[string]any)["text"] = "" }, wantErr: "back[3].text: must not be empty"},
		{name: "no name", edit: func(m map[string]any) { front(m, 4)["text"] = "{company}" }, wantErr: "no text element shows {print_name}"},
		{name: "no photo", edit: func(m map[string]any) { front(m, 3)["source"] = "logo" }, wantErr: `no image element with source "portrait"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if tc.edit != nil {
				var m map[string]any
				if err := json.Unmarshal(defaultTemplateJSON, &m); err != nil {
					t.Fatal(err)
				}
				tc.edit(m)
				var err error
				if raw, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(t.TempDir(), "broken.json")
			if err := os.WriteFile(p, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadTemplate(p)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("LoadTemplate error = %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := LoadTemplate(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing template file loaded")
	}
}

func front(m map[string]any, i int) map[string]any {
	return m["front"].([]any)[i].(map[string]any)
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // "" = fits
	}{
		{"Anna Svensson", ""},
		{"  Anna     Svensson  ", ""},
		{"Åsa Ängström-Öberg", ""},
		{"Łukasz-Żółć Ścibor", ""},
		{"Zażółć Gęślą Jaźń Ńćś", ""},
		{"Łukasz-Żółć Ścibor-Grzegorzewski Ćwikliński", ""},
		{"Maximilian-Alexander Wolfeschlegelstein-Hohenzollern", ""},
		{"Maximilian-Alexander Wolfeschlegelsteinhausenbergerdorff von Hohenzollern-Sigmaringen Brandenburg", "does not fit"},
		{"Wolfeschlegelsteinhausenbergerdorffvonhohenzollernsigmaringen", "does not fit"},
		{"", "empty"},
		{"   ", "empty"},
		{"王小明", "cannot be printed"},
		{"Anna\nSvensson", "control"},
	}
	tpl := DefaultTemplate()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tpl.CheckName(tc.name)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v, want it to fit", tc.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckName(%q) = %v, want error containing %q", tc.name, err, tc.wantErr)
			}
			if tc.wantErr == "does not fit" && !errors.Is(err, ErrNameTooLong) {
				t.Errorf("error %v does not wrap ErrNameTooLong", err)
			}
		})
	}
}

// TestNameShrinks: a name too wide for two lines at 9 pt is set smaller,
// never below 6 pt.
func TestNameShrinks(t *testing.T) {
	m, err := newMeasurer()
	if err != nil {
		t.Fatal(err)
	}
	e := DefaultTemplate().nameElement()
	tests := []struct {
		name     string
		wantSize float64
	}{
		{"Anna Svensson", 9},
		{"Maximilian-Alexander Wolfeschlegelstein-Hohenzollern", 0}, // some size below 9
	}
	for _, tc := range tests {
		lines, size, err := fitText(m, e, tc.name)
		if err != nil {
			t.Fatalf("%q: %v", tc.name, err)
		}
		if tc.wantSize != 0 && size != tc.wantSize {
			t.Errorf("%q: size %g, want %g", tc.name, size, tc.wantSize)
		}
		if tc.wantSize == 0 && (size >= 9 || size < 6) {
			t.Errorf("%q: size %g, want shrunk into [6, 9)", tc.name, size)
		}
		if len(lines) > 2 {
			t.Errorf("%q: %d lines, want at most 2", tc.name, len(lines))
		}
		for _, l := range lines {
			w, err := m.widthMM(e.Font, l, size)
			if err != nil {
				t.Fatal(err)
			}
			if w > e.W {
				t.Errorf("%q: line %q is %.2f mm wide, box is %.2f mm", tc.name, l, w, e.W)
			}
		}
	}
}
