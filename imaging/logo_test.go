package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// logoImage is a w x h white canvas with a black bar of bw x bh at (x, y).
func logoImage(w, h, x, y, bw, bh int, bar color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for yy := y; yy < y+bh; yy++ {
		for xx := x; xx < x+bw; xx++ {
			img.Set(xx, yy, bar)
		}
	}
	return img
}

// inkBounds returns the bounding box of pixels darker than mid-grey.
func inkBounds(img image.Image) image.Rectangle {
	var r image.Rectangle
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c := color.GrayModel.Convert(img.At(x, y)).(color.Gray); c.Y < 128 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

func TestPrepareLogo(t *testing.T) {
	tests := []struct {
		name     string
		img      image.Image
		color    bool
		wantInk  image.Rectangle // where the bar must land in the 354x118 box
		wantGray bool
	}{
		{
			// A wide bar with a big border: trimmed, then width-limited.
			name: "wide logo with margin", img: logoImage(1000, 600, 100, 250, 800, 100, color.Black),
			wantInk: image.Rect(0, 37, 354, 81), wantGray: true,
		},
		{
			// A tall bar: height-limited and centred horizontally.
			name: "tall logo", img: logoImage(500, 500, 200, 50, 100, 400, color.Black),
			wantInk: image.Rect(162, 0, 192, 118), wantGray: true,
		},
		{
			name: "colour kept", img: logoImage(708, 236, 54, 18, 600, 200, color.RGBA{200, 0, 0, 255}), color: true,
			wantInk: image.Rect(0, 0, 354, 118),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := PrepareLogo(encodePNG(t, tt.img), tt.color)
			if err != nil {
				t.Fatal(err)
			}
			if out.Bounds() != image.Rect(0, 0, LogoBoxW, LogoBoxH) {
				t.Fatalf("bounds %v", out.Bounds())
			}
			if _, isGray := out.(*image.Gray); isGray != tt.wantGray {
				t.Fatalf("type %T", out)
			}
			got := inkBounds(out)
			if tt.color {
				// Red is not dark in gray; check the colour survives instead.
				r, g, b, _ := out.At(177, 59).RGBA()
				if r>>8 < 150 || g>>8 > 60 || b>>8 > 60 {
					t.Errorf("centre colour %d,%d,%d", r>>8, g>>8, b>>8)
				}
				return
			}
			near := func(a, b int) bool { return a-b <= 2 && b-a <= 2 }
			if !near(got.Min.X, tt.wantInk.Min.X) || !near(got.Min.Y, tt.wantInk.Min.Y) ||
				!near(got.Max.X, tt.wantInk.Max.X) || !near(got.Max.Y, tt.wantInk.Max.Y) {
				t.Errorf("ink at %v, want about %v", got, tt.wantInk)
			}
		})
	}
}

func TestPrepareLogoErrors(t *testing.T) {
	var he *HeaderError
	if _, err := PrepareLogo(encodePNG(t, logoImage(300, 100, 10, 10, 100, 50, color.Black)), false); !errors.As(err, &he) || he.Code != CodeResolutionTooLow {
		t.Errorf("small logo: %v", err)
	}
	if _, err := PrepareLogo(encodePNG(t, logoImage(400, 200, 0, 0, 0, 0, color.Black)), false); err == nil {
		t.Error("blank logo accepted")
	}
	if _, err := PrepareLogo([]byte("<svg/>"), false); err == nil {
		t.Error("SVG accepted")
	}
	broken := encodePNG(t, logoImage(400, 200, 10, 10, 100, 50, color.Black))
	if _, err := PrepareLogo(broken[:len(broken)/2], false); err == nil {
		t.Error("truncated PNG accepted")
	}
}

func TestEncodePNGDPI(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, PortraitW, PortraitH))
	data, err := EncodePNG(img, 300)
	if err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(bytes.NewReader(data)) // also verifies chunk CRCs
	if err != nil {
		t.Fatal(err)
	}
	if back.Bounds() != img.Bounds() {
		t.Fatalf("bounds %v", back.Bounds())
	}
	i := bytes.Index(data, []byte("pHYs"))
	if i < 0 || i > 8+25+4 {
		t.Fatalf("pHYs chunk missing or after image data (at %d)", i)
	}
	x, y, unit := binary.BigEndian.Uint32(data[i+4:]), binary.BigEndian.Uint32(data[i+8:]), data[i+12]
	if x != 11811 || y != 11811 || unit != 1 { // 300 dpi = 11811 px/m
		t.Errorf("pHYs %d x %d unit %d", x, y, unit)
	}
	if _, err := EncodePNG(img, 0); err == nil {
		t.Error("dpi 0 accepted")
	}
}
