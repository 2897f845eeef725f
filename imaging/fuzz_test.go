package imaging

import (
	"encoding/json"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheckPhoto feeds arbitrary bytes to the whole stage (without the
// top-level recover): it must return a consistent result and never panic.
func FuzzCheckPhoto(f *testing.F) {
	face := image.NewRGBA(image.Rect(0, 0, 320, 420))
	for y := 0; y < 420; y++ {
		for x := 0; x < 320; x++ {
			face.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	jpg := encodeJPEG(f, face)
	f.Add(jpg)
	f.Add(encodePNG(f, face))
	f.Add(withEXIF(jpg, 6, false))
	f.Add(withEXIF(jpg, 3, true))
	f.Add(jpg[:len(jpg)/2])
	f.Add(pngHeaderOnly(2000, 2000))
	for _, name := range []string{"progressive.jpg", "cmyk.jpg"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res := evaluate(data)
		switch res.Verdict {
		case VerdictPass:
			if len(res.Reasons) != 0 {
				t.Fatalf("pass with reasons %v", res.Reasons)
			}
		case VerdictFail, VerdictUnreadable:
			if len(res.Reasons) == 0 {
				t.Fatalf("%s without a reason", res.Verdict)
			}
		default:
			t.Fatalf("verdict %q", res.Verdict)
		}
		if _, err := json.Marshal(res); err != nil { // NaN or Inf in a metric
			t.Fatalf("result does not marshal: %v", err)
		}
		if res.Verdict != VerdictUnreadable {
			if res.Portrait == nil || res.Portrait.Bounds().Dx() != PortraitW || res.Portrait.Bounds().Dy() != PortraitH {
				t.Fatalf("decoded image without a 300x380 portrait")
			}
		}
	})
}
