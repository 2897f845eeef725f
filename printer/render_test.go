package printer

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/boombuler/barcode/qr"

	"id06/internal/integration"
)

// renderCases are the golden cards: each card type, long and accented
// names, no logo, colour logo.
func renderCases() []struct {
	name string
	card Card
} {
	base := goldenCard()
	with := func(f func(*Card)) Card { c := base; f(&c); return c }
	return []struct {
		name string
		card Card
	}{
		{"id06", base},
		{"visitor", with(func(c *Card) { c.CardType = "visitor" })},
		{"temporary", with(func(c *Card) { c.CardType = "temporary" })},
		{"long-polish-name", with(func(c *Card) {
			c.PrintName = "Łukasz-Żółć Ścibor-Grzegorzewski Ćwikliński"
			c.Company = "Przedsiębiorstwo Budowlane Źródło Śląsk Sp. z o.o. filial Sverige"
		})},
		{"swedish-name", with(func(c *Card) { c.PrintName = "Åsa Ängström-Öberg"; c.Company = "Älvdalens Bygg & Snickeri AB" })},
		{"no-logo", with(func(c *Card) { c.Logo = nil })},
		{"color-logo", with(func(c *Card) { c.ColorLogo = true })},
	}
}

func TestRenderGolden(t *testing.T) {
	pdfinfo := integration.Tool(t, "pdfinfo", "poppler-utils")
	pdftotext := integration.Tool(t, "pdftotext", "poppler-utils")
	tpl := DefaultTemplate()
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			face, err := Render(tpl, tc.card)
			if err != nil {
				t.Fatal(err)
			}
			pdfPath := writePDF(t, t.TempDir(), face.PDF)

			info := run(t, pdfinfo, pdfPath)
			if !regexp.MustCompile(`(?m)^Pages:\s+2$`).MatchString(info) {
				t.Errorf("want 2 pages (front, back); pdfinfo:\n%s", info)
			}
			// 85.60 x 53.98 mm = 242.65 x 153.01 pt.
			if !regexp.MustCompile(`(?m)^Page size:\s+242\.65 x 153\.01 pts$`).MatchString(info) {
				t.Errorf("page is not ID-1 (242.65 x 153.01 pt); pdfinfo:\n%s", info)
			}

			text := run(t, pdftotext, "-layout", pdfPath, "-")
			checkGolden(t, tc.name+".txt", []byte(text), func(got, want []byte) bool { return bytes.Equal(got, want) })
			for _, want := range []string{"LoA2", "Org.nr 556677-8899", "BB-1234-567890", "Giltig t.o.m. 2031-11-22", "Kortverkstan Nord AB"} {
				if !strings.Contains(text, want) {
					t.Errorf("PDF text lacks %q", want)
				}
			}
			// Names may wrap onto two lines, at spaces or after hyphens.
			for _, w := range strings.FieldsFunc(tc.card.PrintName, func(r rune) bool { return r == ' ' || r == '-' }) {
				if !strings.Contains(text, w) {
					t.Errorf("PDF text lacks name part %q", w)
				}
			}

			for side, b := range map[string][]byte{"front": face.FrontPNG, "back": face.BackPNG} {
				img, err := png.Decode(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if got := img.Bounds().Size(); got != (image.Point{1011, 638}) {
					t.Errorf("%s PNG is %v, want 1011x638 (ID-1 at 300 dpi)", side, got)
				}
				// pHYs: 11811 pixels per metre (300 dpi) both ways, unit metre.
				if !bytes.Contains(b[:64], []byte("\x00\x00\x00\x09pHYs\x00\x00\x2e\x23\x00\x00\x2e\x23\x01")) {
					t.Errorf("%s PNG lacks a 300 dpi pHYs chunk", side)
				}
				checkGolden(t, tc.name+"-"+side+".png", b, func(got, want []byte) bool {
					d, err := pngDiff(got, want, 1)
					if err != nil {
						t.Error(err)
						return false
					}
					t.Logf("%s vs golden: mean %.3f, off %.4f", side, d.mean, d.off)
					return d.mean < 0.5 && d.off < 0.002
				})
			}
		})
	}
}

// TestPDFMatchesPNG rasterises the PDF with poppler and compares it with the
// PNG preview drawn from the same layout, for every golden case and a real
// portrait.
func TestPDFMatchesPNG(t *testing.T) {
	pdftoppm := integration.Tool(t, "pdftoppm", "poppler-utils")
	cases := renderCases()
	cases = append(cases, struct {
		name string
		card Card
	}{"real-portrait", testCard(t)})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			face, err := Render(DefaultTemplate(), tc.card)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			pdfPath := writePDF(t, dir, face.PDF)
			run(t, pdftoppm, "-r", "300", "-png", pdfPath, filepath.Join(dir, "page"))
			for i, preview := range [][]byte{face.FrontPNG, face.BackPNG} {
				raster, err := os.ReadFile(filepath.Join(dir, "page-"+string(rune('1'+i))+".png"))
				if err != nil {
					t.Fatal(err)
				}
				// Poppler hints glyphs and the preview does not, so glyph
				// edges move by a pixel; compare 3x3-pixel (0.25 mm) cells.
				d, err := pngDiff(raster, preview, 3)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("side %d: mean |diff| %.3f, cells off by >64: %.4f", i+1, d.mean, d.off)
				if d.mean > 3 || d.off > 0.005 {
					t.Errorf("side %d: PDF raster and PNG preview disagree: mean |diff| %.3f (max 3), cells off %.4f (max 0.005)", i+1, d.mean, d.off)
				}
			}
			// The comparison must be able to fail: front raster vs back preview.
			raster, err := os.ReadFile(filepath.Join(dir, "page-1.png"))
			if err != nil {
				t.Fatal(err)
			}
			if d, err := pngDiff(raster, face.BackPNG, 3); err != nil || d.off < 0.01 {
				t.Errorf("front raster vs back preview should differ clearly: %+v %v", d, err)
			}
			// And a layout shifted by 0.5 mm must not pass either.
			shifted := shiftPNG(t, face.FrontPNG, 6)
			if d, err := pngDiff(raster, shifted, 3); err != nil || d.mean <= 3 && d.off <= 0.005 {
				t.Errorf("front raster vs preview shifted 0.5 mm should fail the check: %+v %v", d, err)
			} else {
				t.Logf("shifted 0.5 mm: mean |diff| %.3f, cells off %.4f (fails, as it should)", d.mean, d.off)
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	a, err := Render(DefaultTemplate(), goldenCard())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(DefaultTemplate(), goldenCard())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PDF, b.PDF) || !bytes.Equal(a.FrontPNG, b.FrontPNG) || !bytes.Equal(a.BackPNG, b.BackPNG) {
		t.Error("rendering the same card twice gave different bytes; a retried print would differ")
	}
}

func TestRenderFontsEmbedded(t *testing.T) {
	pdffonts := integration.Tool(t, "pdffonts", "poppler-utils")
	face, err := Render(DefaultTemplate(), goldenCard())
	if err != nil {
		t.Fatal(err)
	}
	p := writePDF(t, t.TempDir(), face.PDF)
	out := run(t, pdffonts, p)
	lines := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "TrueType") {
			lines++
			if f := strings.Fields(l); len(f) < 5 || f[len(f)-5] != "yes" {
				t.Errorf("font not embedded: %q", l)
			}
		}
	}
	if lines != 2 {
		t.Errorf("want 2 embedded TrueType fonts (regular, bold); pdffonts:\n%s", out)
	}
}

// TestQRCodeInPreview reads the QR modules back from the back PNG and
// compares them with a fresh encoding of the card number.
func TestQRCodeInPreview(t *testing.T) {
	c := goldenCard()
	face, err := Render(DefaultTemplate(), c)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(face.BackPNG))
	if err != nil {
		t.Fatal(err)
	}
	var e *Element
	tpl := DefaultTemplate()
	for i := range tpl.Back {
		if tpl.Back[i].Kind == "qr" {
			e = &tpl.Back[i]
		}
	}
	code, err := qr.Encode(c.CardNumber, qr.M, qr.Auto)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := qrOps(e, c.CardNumber)
	if err != nil {
		t.Fatal(err)
	}
	n := code.Bounds().Dx()
	quiet := ops[0]
	mod := quiet.w / float64(n+8)
	wrong := 0
	for row := 0; row < n; row++ {
		for col := 0; col < n; col++ {
			x := (quiet.x + (float64(col)+4.5)*mod) * pxPerMM
			y := (quiet.y + (float64(row)+4.5)*mod) * pxPerMM
			got := color.GrayModel.Convert(img.At(int(x), int(y))).(color.Gray).Y < 128
			if got != isDark(code.At(col, row)) {
				wrong++
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d QR modules in the preview differ from the QR code of %q", wrong, n*n, c.CardNumber)
	}
}

func TestLogoColour(t *testing.T) {
	px := func(mm float64) int { return int(mm * pxPerMM) }
	box := image.Rect(px(40.6)+2, px(2.0)+2, px(70.6)-2, px(12.0)-2)
	for _, colour := range []bool{false, true} {
		c := goldenCard()
		c.ColorLogo = colour
		face, err := Render(DefaultTemplate(), c)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(face.FrontPNG))
		if err != nil {
			t.Fatal(err)
		}
		coloured := 0
		for y := box.Min.Y; y < box.Max.Y; y++ {
			for x := box.Min.X; x < box.Max.X; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if max(r, g, b)-min(r, g, b) > 0x2000 {
					coloured++
				}
			}
		}
		if colour && coloured < 1000 {
			t.Errorf("colour logo: only %d coloured pixels in the logo box", coloured)
		}
		if !colour && coloured > 0 {
			t.Errorf("grayscale logo: %d coloured pixels in the logo box", coloured)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Card)
		wantErr string
	}{
		{"name too long", func(c *Card) {
			c.PrintName = "Maximilian-Alexander Wolfeschlegelsteinhausenbergerdorff von Hohenzollern-Sigmaringen"
		}, "does not fit"},
		{"unknown card type", func(c *Card) { c.CardType = "vip" }, `card type "vip" is unknown`},
		{"no portrait", func(c *Card) { c.Portrait = nil }, "portrait is missing"},
		{"square portrait", func(c *Card) { c.Portrait = image.NewGray(image.Rect(0, 0, 300, 300)) }, "aspect"},
		{"empty logo", func(c *Card) { c.Logo = image.NewGray(image.Rect(0, 0, 0, 0)) }, "logo is 0x0 px"},
		{"no card number", func(c *Card) { c.CardNumber = "" }, "card_number is empty"},
		{"no validity", func(c *Card) { c.ValidUntil = time.Time{} }, "valid_until is empty"},
		{"letters the font lacks", func(c *Card) { c.PrintName = "王小明" }, "cannot be printed"},
		{"control character", func(c *Card) { c.Company = "Bygg\tAB" }, "control"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := goldenCard()
			tc.mutate(&c)
			_, err := Render(DefaultTemplate(), c)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Render error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	c := goldenCard()
	c.PrintName = strings.Repeat("Långnamn ", 12)
	if _, err := Render(DefaultTemplate(), c); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("too long name: error %v does not wrap ErrNameTooLong", err)
	}
}

type diff struct{ mean, off float64 }

// pngDiff compares two PNGs on their common area, in gray over white, in
// cells of block x block pixels: mean absolute difference (0-255) and the
// share of cells off by > 64.
func pngDiff(a, b []byte, block int) (diff, error) {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return diff{}, err
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return diff{}, err
	}
	ga, gb := grayOverWhite(ia), grayOverWhite(ib)
	w := min(ga.Bounds().Dx(), gb.Bounds().Dx()) / block
	h := min(ga.Bounds().Dy(), gb.Bounds().Dy()) / block
	if w < 30 || h < 30 {
		return diff{}, errors.New("images too small to compare")
	}
	cell := func(g *image.Gray, cx, cy int) float64 {
		var s int
		for y := cy * block; y < (cy+1)*block; y++ {
			for x := cx * block; x < (cx+1)*block; x++ {
				s += int(g.GrayAt(x, y).Y)
			}
		}
		return float64(s) / float64(block*block)
	}
	var sum float64
	off := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := math.Abs(cell(ga, x, y) - cell(gb, x, y))
			sum += d
			if d > 64 {
				off++
			}
		}
	}
	return diff{mean: sum / float64(w*h), off: float64(off) / float64(w*h)}, nil
}

// shiftPNG moves an image right and down by n pixels.
func shiftPNG(t *testing.T, b []byte, n int) []byte {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(out, out.Bounds().Add(image.Pt(n, n)), img, image.Point{}, draw.Over)
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func grayOverWhite(img image.Image) *image.Gray {
	b := img.Bounds()
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Over)
	g := image.NewGray(rgba.Bounds())
	draw.Draw(g, g.Bounds(), rgba, image.Point{}, draw.Src)
	return g
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte, same func(got, want []byte) bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file missing (run go test -update): %v", err)
	}
	if !same(got, want) {
		if bytes.HasPrefix(got, []byte("\x89PNG")) {
			bad := filepath.Join(os.TempDir(), "printer-got-"+name)
			_ = os.WriteFile(bad, got, 0o644)
			t.Errorf("%s differs from the golden file beyond tolerance; got written to %s", name, bad)
		} else {
			t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
		}
	}
}

// writePDF writes a rendered document into dir for poppler to read.
func writePDF(t *testing.T, dir string, pdf []byte) string {
	t.Helper()
	p := filepath.Join(dir, "doc.pdf")
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
