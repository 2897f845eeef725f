package printer

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"sync"
	"time"

	"codeberg.org/go-pdf/fpdf"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"

	"id06/imaging"
)

// Face is a rendered card: the PDF for the printer (one page per side) and
// 300 dpi PNG previews (1011x638 for ID-1) for people.
type Face struct {
	PDF      []byte
	FrontPNG []byte
	BackPNG  []byte
}

const dpi = 300

// pdfEpoch is written as the PDF creation date so that the same card always
// yields the same bytes; a re-render for a retried print job is identical.
var pdfEpoch = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)

// Layout is a card laid out once, to be drawn as the printer's PDF and as
// the previews for people, each when it is needed: a lane prints the PDF
// and draws the previews while the card prints.
type Layout struct {
	l      *layout
	number string
}

// Lay lays out a card.
func Lay(t *Template, c Card) (*Layout, error) {
	if t == nil {
		return nil, fmt.Errorf("render: no template")
	}
	// A Template built in code has not been through LoadTemplate.
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("render: card template: %w", err)
	}
	l, err := t.buildLayout(c)
	if err != nil {
		return nil, fmt.Errorf("render card %s: %w", c.CardNumber, err)
	}
	return &Layout{l: l, number: c.CardNumber}, nil
}

// PDF draws the card for the printer: a page per side.
func (l *Layout) PDF() ([]byte, error) {
	pdf, err := l.l.pdf()
	if err != nil {
		return nil, fmt.Errorf("render card %s: PDF: %w", l.number, err)
	}
	return pdf, nil
}

// Previews draws both sides as 300 dpi PNGs, the two at once.
func (l *Layout) Previews() (front, back []byte, err error) {
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() { front, errs[0] = l.l.previewPNG(0) })
	wg.Go(func() { back, errs[1] = l.l.previewPNG(1) })
	wg.Wait()
	for i, what := range []string{"front PNG", "back PNG"} {
		if errs[i] != nil {
			return nil, nil, fmt.Errorf("render card %s: %s: %w", l.number, what, errs[i])
		}
	}
	return front, back, nil
}

// Render draws the layout as PDF and as PNGs, the PDF and the previews at once.
func (l *Layout) Render() (*Face, error) {
	var f Face
	var pdfErr, pngErr error
	var wg sync.WaitGroup
	wg.Go(func() { f.PDF, pdfErr = l.PDF() })
	wg.Go(func() { f.FrontPNG, f.BackPNG, pngErr = l.Previews() })
	wg.Wait()
	if pdfErr != nil {
		return nil, pdfErr
	}
	if pngErr != nil {
		return nil, pngErr
	}
	return &f, nil
}

// Render lays out the card once and draws that layout as PDF and as PNGs.
func Render(t *Template, c Card) (*Face, error) {
	l, err := Lay(t, c)
	if err != nil {
		return nil, err
	}
	return l.Render()
}

// pngEncoder favours speed (the previews are mostly flat colour) and reuses
// its compressor buffers across renders.
var pngEncoder = &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngPool{}}

type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

// previewPNG draws one side and encodes it as a PNG marked 300 dpi.
func (l *layout) previewPNG(side int) ([]byte, error) {
	img, err := l.raster(side)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := pngEncoder.Encode(&buf, img); err != nil {
		return nil, err
	}
	return imaging.WithDPI(buf.Bytes(), dpi)
}

func (l *layout) pdf() ([]byte, error) {
	size := fpdf.SizeType{Wd: l.w, Ht: l.h}
	// fpdf's "P" takes the size as given; "L" would swap width and height.
	const orientation = "P"
	doc := fpdf.NewCustom(&fpdf.InitType{OrientationStr: orientation, UnitStr: "mm", Size: size})
	doc.SetMargins(0, 0, 0)
	doc.SetAutoPageBreak(false, 0)
	doc.SetCreationDate(pdfEpoch)
	doc.SetModificationDate(pdfEpoch)
	doc.SetCatalogSort(true)
	doc.SetTitle("ID06 card face", true)
	doc.SetCreator("id06 station", true)
	for _, name := range []string{fontRegular, fontBold} { // fixed order: same bytes every time
		doc.AddUTF8FontFromBytes(name, "", fontTTF[name])
	}
	images := map[string]bool{}
	for _, ops := range l.sides {
		doc.AddPageFormat(orientation, size)
		for _, o := range ops {
			g := int(o.gray)
			switch o.kind {
			case opFill:
				doc.SetFillColor(g, g, g)
				doc.Rect(o.x, o.y, o.w, o.h, "F")
			case opStroke:
				doc.SetDrawColor(g, g, g)
				doc.SetLineWidth(o.stroke)
				doc.Rect(o.x+o.stroke/2, o.y+o.stroke/2, o.w-o.stroke, o.h-o.stroke, "D")
			case opText:
				doc.SetFont(o.font, "", o.sizePt)
				doc.SetTextColor(g, g, g)
				doc.Text(o.x, o.y, o.text)
			case opImage:
				opts := fpdf.ImageOptions{ImageType: "PNG"}
				if !images[o.imgName] {
					var buf bytes.Buffer
					if err := pngEncoder.Encode(&buf, o.img); err != nil {
						return nil, err
					}
					doc.RegisterImageOptionsReader(o.imgName, opts, &buf)
					images[o.imgName] = true
				}
				doc.ImageOptions(o.imgName, o.x, o.y, o.w, o.h, false, opts, 0, "")
			}
		}
	}
	var out bytes.Buffer
	if err := doc.Output(&out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// pxPerMM is the preview scale: 300 dpi.
const pxPerMM = dpi / 25.4

// previewSize is the PNG size for a card; 1011x638 for ID-1.
func previewSize(wMM, hMM float64) (int, int) {
	return int(math.Round(wMM * pxPerMM)), int(math.Round(hMM * pxPerMM))
}

// raster draws one side at 300 dpi: white card, transparent outside the
// rounded corners.
func (l *layout) raster(side int) (*image.RGBA, error) {
	fs, err := loadMetrics()
	if err != nil {
		return nil, err
	}
	faces := &faces{fonts: fs, m: map[faceKey]font.Face{}}
	w, h := previewSize(l.w, l.h)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var z vector.Rasterizer
	z.Reset(w, h)
	roundedRect(&z, 0, 0, float32(w), float32(h), float32(l.radius*pxPerMM))
	z.Draw(img, img.Bounds(), image.White, image.Point{})

	for _, o := range l.sides[side] {
		src := image.NewUniform(color.Gray{Y: o.gray})
		x0, y0 := float32(o.x*pxPerMM), float32(o.y*pxPerMM)
		x1, y1 := float32((o.x+o.w)*pxPerMM), float32((o.y+o.h)*pxPerMM)
		switch o.kind {
		case opFill, opStroke:
			// Rasterise only the box's pixels: a QR code is hundreds of boxes.
			bx, by := float32(math.Floor(float64(x0))), float32(math.Floor(float64(y0)))
			r := image.Rect(int(bx), int(by), int(math.Ceil(float64(x1))), int(math.Ceil(float64(y1)))).Intersect(img.Bounds())
			if r.Empty() {
				continue
			}
			z.Reset(r.Dx(), r.Dy())
			rectPath(&z, x0-bx, y0-by, x1-bx, y1-by, false)
			if o.kind == opStroke {
				s := float32(o.stroke * pxPerMM)
				rectPath(&z, x0-bx+s, y0-by+s, x1-bx-s, y1-by-s, true)
			}
			z.Draw(img, r, src, image.Point{})
		case opText:
			face, err := faces.face(o.font, o.sizePt)
			if err != nil {
				return nil, err
			}
			d := font.Drawer{Dst: img, Src: src, Face: face, Dot: fixed.Point26_6{
				X: fixed.Int26_6(math.Round(o.x * pxPerMM * 64)),
				Y: fixed.Int26_6(math.Round(o.y * pxPerMM * 64)),
			}}
			d.DrawString(o.text)
		case opImage:
			r := image.Rect(int(math.Round(float64(x0))), int(math.Round(float64(y0))), int(math.Round(float64(x1))), int(math.Round(float64(y1))))
			if r.Size() == o.img.Bounds().Size() {
				// Photo and logo arrive at 300 dpi already: copy, don't resample.
				xdraw.Draw(img, r, o.img, o.img.Bounds().Min, xdraw.Over)
			} else {
				xdraw.BiLinear.Scale(img, r, o.img, o.img.Bounds(), xdraw.Over, nil)
			}
		}
	}
	return img, nil
}

// rectPath adds a closed rectangle; reverse winds it the other way so that
// it cuts a hole in an enclosing rectangle.
func rectPath(z *vector.Rasterizer, x0, y0, x1, y1 float32, reverse bool) {
	z.MoveTo(x0, y0)
	if reverse {
		z.LineTo(x0, y1)
		z.LineTo(x1, y1)
		z.LineTo(x1, y0)
	} else {
		z.LineTo(x1, y0)
		z.LineTo(x1, y1)
		z.LineTo(x0, y1)
	}
	z.ClosePath()
}

func roundedRect(z *vector.Rasterizer, x0, y0, x1, y1, r float32) {
	// k places cubic control points to approximate a quarter circle.
	const k = 0.5523
	z.MoveTo(x0+r, y0)
	z.LineTo(x1-r, y0)
	z.CubeTo(x1-r+k*r, y0, x1, y0+r-k*r, x1, y0+r)
	z.LineTo(x1, y1-r)
	z.CubeTo(x1, y1-r+k*r, x1-r+k*r, y1, x1-r, y1)
	z.LineTo(x0+r, y1)
	z.CubeTo(x0+r-k*r, y1, x0, y1-r+k*r, x0, y1-r)
	z.LineTo(x0, y0+r)
	z.CubeTo(x0, y0+r-k*r, x0+r-k*r, y0, x0+r, y0)
	z.ClosePath()
}
