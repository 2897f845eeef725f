package imaging

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
)

// Logo box on the card: 30 x 10 mm at 300 dpi.
const (
	LogoBoxW = 354
	LogoBoxH = 118
)

// PrepareLogo checks and decodes an employer logo, removes its uniform
// border (the colour of the corners) and fits it, aspect kept, centred, into
// the 354x118 logo box on a white ground. The result is *image.Gray unless
// color is set (the order pays for a colour logo), then *image.RGBA.
func PrepareLogo(data []byte, color bool) (img image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("the logo could not be read: %v", p)
		}
	}()
	if err := CheckLogoHeader(data); err != nil {
		return nil, err
	}
	h, _ := parseHeader(data) // already validated by CheckLogoHeader
	d := logoDenom(h)
	cost := stageCost(h, d)
	stageBudget.acquire(cost) // within photoMemoryLimit: CheckLogoHeader
	defer stageBudget.release(cost)
	m, derr := decodeScaled(data, h, d)
	if derr != nil {
		return nil, fmt.Errorf("the logo could not be decoded: %v", derr)
	}
	x0, y0, x1, y1 := trimBounds(m)
	if x1-x0 < 4 || y1-y0 < 4 {
		return nil, fmt.Errorf("the logo is empty (a single colour)")
	}
	// Fit inside the box; never enlarge beyond 1:1 more than needed to fill
	// it, since the header check already guarantees enough pixels.
	k := math.Min(float64(LogoBoxW)/float64(x1-x0), float64(LogoBoxH)/float64(y1-y0))
	ow, oh := max(1, int(math.Round(float64(x1-x0)*k))), max(1, int(math.Round(float64(y1-y0)*k)))
	offX, offY := (LogoBoxW-ow)/2, (LogoBoxH-oh)/2
	out := image.NewRGBA(image.Rect(0, 0, LogoBoxW, LogoBoxH))
	draw.Draw(out, out.Rect, image.White, image.Point{}, draw.Src)
	for v := 0; v < oh; v++ {
		sy0, sy1 := float64(y0)+float64(v)/k, float64(y0)+float64(v+1)/k
		for u := 0; u < ow; u++ {
			sx0, sx1 := float64(x0)+float64(u)/k, float64(x0)+float64(u+1)/k
			r, g, b := m.area(sx0, sy0, sx1, sy1)
			i := out.PixOffset(offX+u, offY+v)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = r, g, b, 255
		}
	}
	if color {
		return out, nil
	}
	gray := image.NewGray(out.Rect)
	draw.Draw(gray, gray.Rect, out, image.Point{}, draw.Src)
	return gray, nil
}

// trimBounds finds the bounding box of pixels that differ from the border
// colour (the median of the four corners) by more than a small tolerance.
func trimBounds(m *rgb) (x0, y0, x1, y1 int) {
	corner := func(x, y int) color.RGBA {
		i := 3 * (y*m.w + x)
		return color.RGBA{m.pix[i], m.pix[i+1], m.pix[i+2], 255}
	}
	cs := []color.RGBA{corner(0, 0), corner(m.w-1, 0), corner(0, m.h-1), corner(m.w-1, m.h-1)}
	med := func(f func(c color.RGBA) uint8) int {
		v := []float64{float64(f(cs[0])), float64(f(cs[1])), float64(f(cs[2])), float64(f(cs[3]))}
		return int(percentile(v, 0.5))
	}
	br := med(func(c color.RGBA) uint8 { return c.R })
	bg := med(func(c color.RGBA) uint8 { return c.G })
	bb := med(func(c color.RGBA) uint8 { return c.B })
	const tol = 24 // JPEG noise around a flat border stays well below this
	differs := func(x, y int) bool {
		i := 3 * (y*m.w + x)
		d := max(absInt(int(m.pix[i])-br), absInt(int(m.pix[i+1])-bg), absInt(int(m.pix[i+2])-bb))
		return d > tol
	}
	x0, y0, x1, y1 = m.w, m.h, 0, 0
	for y := 0; y < m.h; y++ {
		for x := 0; x < m.w; x++ {
			if differs(x, y) {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x+1), max(y1, y+1)
			}
		}
	}
	if x1 <= x0 || y1 <= y0 {
		return 0, 0, 0, 0
	}
	return
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// area averages the source over [x0,x1)x[y0,y1) with fractional coverage.
func (m *rgb) area(x0, y0, x1, y1 float64) (uint8, uint8, uint8) {
	var r, g, b, wsum float64
	for yy := int(y0); yy < m.h && float64(yy) < y1; yy++ {
		wy := math.Min(y1, float64(yy+1)) - math.Max(y0, float64(yy))
		if wy <= 0 {
			continue
		}
		for xx := int(x0); xx < m.w && float64(xx) < x1; xx++ {
			wx := math.Min(x1, float64(xx+1)) - math.Max(x0, float64(xx))
			if wx <= 0 {
				continue
			}
			i := 3 * (yy*m.w + xx)
			w := wx * wy
			r += w * float64(m.pix[i])
			g += w * float64(m.pix[i+1])
			b += w * float64(m.pix[i+2])
			wsum += w
		}
	}
	if wsum == 0 {
		return 255, 255, 255
	}
	return clamp8(r / wsum), clamp8(g / wsum), clamp8(b / wsum)
}
