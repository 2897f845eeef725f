package imaging

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func readPhoto(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(photosDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func toRGBA(m *rgb) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, m.w, m.h))
	for i, j := 0, 0; i < len(m.pix); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = m.pix[i], m.pix[i+1], m.pix[i+2], 255
	}
	return img
}

func decodeAll(t testing.TB, data []byte) *rgb {
	t.Helper()
	h, herr := parseHeader(data)
	if herr != nil {
		t.Fatal(herr)
	}
	m, err := decodeScaled(data, h, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rotated turns an image by deg degrees (clockwise on screen) about its
// centre, filling with the nearest edge, as a camera held at a slant would.
func rotated(m *rgb, deg float64) *rgb {
	out := newRGB(m.w, m.h)
	s, c := math.Sincos(-deg * math.Pi / 180)
	cx, cy := float64(m.w)/2, float64(m.h)/2
	for y := 0; y < m.h; y++ {
		for x := 0; x < m.w; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			r, g, b := m.bilinear(cx+c*dx-s*dy, cy+s*dx+c*dy)
			i := 3 * (y*m.w + x)
			out.pix[i], out.pix[i+1], out.pix[i+2] = clamp8(r), clamp8(g), clamp8(b)
		}
	}
	return out
}

// portraitFace runs the detector on a finished portrait and returns the
// eye midpoint and roll, so tests can check the geometry the card gets.
func portraitFace(t *testing.T, p *image.Gray) (x, y, roll float64) {
	t.Helper()
	m := newRGB(PortraitW, PortraitH)
	for i, v := range p.Pix {
		m.pix[3*i], m.pix[3*i+1], m.pix[3*i+2] = v, v, v
	}
	c, err := loadCascades()
	if err != nil {
		t.Fatal(err)
	}
	wi := newWork(m, 1)
	fs := detectFaces(c, wi.gray, wi.w, wi.h)
	if len(fs) == 0 {
		t.Fatal("no face in the portrait")
	}
	e := findPupils(c, wi.pixels(), wi.w, wi.h, fs[0])
	x, y = e.mid()
	return x, y, e.rollDeg()
}

// TestPortraitGeometry checks the spec geometry on the finished portrait:
// 300x380, eye line about 45% from the top, face centred, upright, and a
// chip JPEG within 15 KB.
func TestPortraitGeometry(t *testing.T) {
	for _, name := range []string{
		"dev/pass_london_001_03.jpg", "dev/pass_london_042_03.jpg", "dev/pass_london_099_03.jpg",
		"dev/borderline_canada_003f_tinted_bg.jpg", "synthetic/warn_small_in_frame_recoverable.jpg",
	} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			res := CheckPhoto(readPhoto(t, name))
			if res.Verdict != VerdictPass {
				t.Fatalf("verdict %s %v", res.Verdict, res.Reasons)
			}
			p := res.Portrait
			if p.Bounds() != image.Rect(0, 0, PortraitW, PortraitH) {
				t.Fatalf("portrait bounds %v", p.Bounds())
			}
			x, y, roll := portraitFace(t, p)
			// Pupil jitter and the detector's own error are a few pixels.
			if math.Abs(y-eyeLineFrac*PortraitH) > 0.04*PortraitH {
				t.Errorf("eye line at y=%.0f, want about %.0f", y, eyeLineFrac*PortraitH)
			}
			if math.Abs(x-PortraitW/2) > 0.05*PortraitW {
				t.Errorf("eyes centred at x=%.0f, want about %d", x, PortraitW/2)
			}
			if math.Abs(roll) > 3 {
				t.Errorf("portrait roll %.1f°", roll)
			}
			var hist [256]int
			for _, v := range p.Pix {
				hist[v]++
			}
			if lo, hi := percentileHist(&hist, len(p.Pix), 0.005), percentileHist(&hist, len(p.Pix), 0.995); lo > 10 || hi < 245 {
				t.Errorf("not levelled: 0.5%%..99.5%% = %d..%d", lo, hi)
			}
			if len(res.ChipJPEG) == 0 || len(res.ChipJPEG) > chipJPEGMax {
				t.Errorf("chip JPEG %d bytes", len(res.ChipJPEG))
			}
			chip, err := jpeg.Decode(bytes.NewReader(res.ChipJPEG))
			if err != nil || chip.Bounds() != p.Bounds() {
				t.Errorf("chip JPEG: %v %v", err, chip)
			}
		})
	}
}

// TestRollCorrected rotates a good photo by a few degrees: it must still
// pass, report the roll, and come out upright.
func TestRollCorrected(t *testing.T) {
	src := decodeAll(t, readPhoto(t, "dev/pass_london_010_03.jpg"))
	for _, deg := range []float64{-6, 5} {
		data := encodeJPEG(t, toRGBA(rotated(src, deg)))
		res := CheckPhoto(data)
		if res.Verdict != VerdictPass {
			t.Fatalf("%v°: verdict %s %v", deg, res.Verdict, res.Reasons)
		}
		if math.Abs(res.Crop.RollDeg-deg) > 2.5 {
			t.Errorf("%v°: crop roll %.1f°", deg, res.Crop.RollDeg)
		}
		if _, _, roll := portraitFace(t, res.Portrait); math.Abs(roll) > 3 {
			t.Errorf("%v°: portrait still rolled %.1f°", deg, roll)
		}
	}
	// Beyond the 8° that may be corrected, the photo is sent back.
	res := CheckPhoto(encodeJPEG(t, toRGBA(rotated(src, 12))))
	if !res.has(CodeHeadTilted) {
		t.Errorf("12°: %s %v", res.Verdict, res.Reasons)
	}
}

// TestEXIFRotatedUpload stores a good photo sideways with EXIF orientation
// 6, as phones do; the verdict and the crop must not change.
func TestEXIFRotatedUpload(t *testing.T) {
	src := decodeAll(t, readPhoto(t, "dev/pass_london_017_03.jpg"))
	upright := CheckPhoto(encodeJPEG(t, toRGBA(src)))
	side := CheckPhoto(withEXIF(encodeJPEG(t, storedFor(toRGBA(src), 6)), 6, false))
	if upright.Verdict != VerdictPass || side.Verdict != VerdictPass {
		t.Fatalf("upright %s %v, sideways %s %v", upright.Verdict, upright.Reasons, side.Verdict, side.Reasons)
	}
	a, b := upright.Crop, side.Crop
	tol := 0.05 * float64(a.H)
	if math.Abs(float64(a.X-b.X)) > tol || math.Abs(float64(a.Y-b.Y)) > tol || math.Abs(float64(a.H-b.H)) > tol {
		t.Errorf("crop upright %+v, via EXIF %+v", *a, *b)
	}
}

// TestDamagedUploads feeds cut-off and corrupted files: every one gets a
// verdict with reasons, never a panic, and a decodable one a portrait.
func TestDamagedUploads(t *testing.T) {
	good := readPhoto(t, "dev/pass_london_004_03.jpg")
	cases := map[string][]byte{
		"header only":   good[:600],
		"half the scan": good[:len(good)/2],
		"no EOI":        good[:len(good)-2],
	}
	flipped := append([]byte{}, good...)
	for i := len(flipped) / 3; i < len(flipped)/3+4000; i += 97 {
		flipped[i] ^= 0x5A
	}
	cases["corrupted scan"] = flipped
	for name, data := range cases {
		res := CheckPhoto(data)
		if res.Verdict == "" || (res.Verdict != VerdictPass && len(res.Reasons) == 0) {
			t.Errorf("%s: verdict %q reasons %v", name, res.Verdict, res.Reasons)
		}
		if res.Verdict != VerdictUnreadable && res.Portrait == nil {
			t.Errorf("%s: decoded but no portrait", name)
		}
	}
}

// TestCheckPhotoConcurrent runs the stage from several goroutines (pigo's
// pupil search draws from the shared math/rand source); run with -race.
func TestCheckPhotoConcurrent(t *testing.T) {
	names := []string{"dev/pass_london_007_03.jpg", "synthetic/fail_sunglasses.jpg", "synthetic/fail_two_faces.jpg", "dev/fail_coffee_noface.png"}
	want := map[string]string{}
	data := map[string][]byte{}
	for _, n := range names {
		data[n] = readPhoto(t, n)
		want[n] = CheckPhoto(data[n]).Verdict
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		n := names[i%len(names)]
		wg.Go(func() {
			if got := CheckPhoto(data[n]).Verdict; got != want[n] {
				t.Errorf("%s: concurrent verdict %s, sequential %s", n, got, want[n])
			}
		})
	}
	wg.Wait()
}

func TestResultJSON(t *testing.T) {
	res := CheckPhoto(readPhoto(t, "synthetic/fail_sunglasses.jpg"))
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Verdict string `json:"verdict"`
		Reasons []struct {
			Code, MessageEN, MessageSV string
		} `json:"reasons"`
		Metrics map[string]float64 `json:"metrics"`
		Crop    map[string]float64 `json:"crop"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Verdict != VerdictFail || len(got.Reasons) == 0 || got.Metrics["eye_band_ratio"] == 0 {
		t.Errorf("JSON %s", b)
	}
	for _, k := range []string{"x", "y", "w", "h", "roll_deg", "scale"} {
		if _, ok := got.Crop[k]; !ok {
			t.Errorf("crop lacks %q: %s", k, b)
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var reasons []map[string]string
	if err := json.Unmarshal(raw["reasons"], &reasons); err != nil || reasons[0]["message_sv"] == "" {
		t.Errorf("reasons JSON %s", raw["reasons"])
	}
}

func TestReasonFor(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Codes() {
		r := ReasonFor(c)
		if r.Code != c || r.MessageEN == "" || r.MessageSV == "" || r.MessageEN == r.MessageSV {
			t.Errorf("%s: %+v", c, r)
		}
		if seen[r.MessageEN] {
			t.Errorf("%s: message shared with another code", c)
		}
		seen[r.MessageEN] = true
	}
	if r := ReasonFor("operator: wrong person"); r.MessageEN != "operator: wrong person" {
		t.Errorf("unknown code: %+v", r)
	}
}

func TestUnreadableVerdict(t *testing.T) {
	for name, data := range map[string][]byte{
		"text":     []byte("not an image"),
		"too many": pngHeaderOnly(8000, 8000),
	} {
		res := CheckPhoto(data)
		if res.Verdict != VerdictUnreadable || len(res.Reasons) != 1 || res.Portrait != nil {
			t.Errorf("%s: %s %v", name, res.Verdict, res.Reasons)
		}
	}
}

// TestPassportFramedUpload crops a good photo to a standard 35x45 mm
// passport frame (head about 75% of the height, a little narrower than the
// card's 300:380): a photo framed by the rules must pass.
func TestPassportFramedUpload(t *testing.T) {
	data := readPhoto(t, "dev/pass_london_031_03.jpg")
	src := decodeAll(t, data)
	c := CheckPhoto(data).Crop
	w := c.H * 35 / 45
	x0 := c.X + (c.W-w)/2
	sub := image.NewRGBA(image.Rect(0, 0, w, c.H))
	full := toRGBA(src)
	for y := 0; y < c.H; y++ {
		for x := 0; x < w; x++ {
			sub.Set(x, y, full.At(x0+x, c.Y+y))
		}
	}
	res := CheckPhoto(encodeJPEG(t, sub))
	if res.Verdict != VerdictPass {
		t.Fatalf("passport-framed photo: %s %v (metrics %v)", res.Verdict, res.Reasons, res.Metrics)
	}
}

// TestOwnPortraitPassesAgain enlarges finished portraits to 600x760 (the
// upload minimum is 300x410) and checks them again: a photo framed exactly
// to the spec must pass and be framed the same way.
func TestOwnPortraitPassesAgain(t *testing.T) {
	for _, name := range []string{"dev/pass_london_004_03.jpg", "dev/pass_london_010_03.jpg", "dev/pass_london_031_03.jpg"} {
		first := CheckPhoto(readPhoto(t, name))
		m := newRGB(PortraitW, PortraitH)
		for i, v := range first.Portrait.Pix {
			m.pix[3*i], m.pix[3*i+1], m.pix[3*i+2] = v, v, v
		}
		again := CheckPhoto(encodeJPEG(t, toRGBA(scaled(m, 2))))
		if again.Verdict != VerdictPass {
			t.Errorf("%s: own portrait checked again: %s %v", name, again.Verdict, again.Reasons)
			continue
		}
		// Same framing: the window is the whole enlarged portrait, within the
		// uncertainty of pigo's face size (its scales step by 10%).
		c := again.Crop
		if math.Abs(float64(c.H)-760) > 0.1*760 || math.Abs(float64(c.Y)) > 0.05*760 || math.Abs(float64(c.X)) > 0.05*600 {
			t.Errorf("%s: reframed to %+v, want about 0,0,600,760", name, *c)
		}
	}
}

// TestDistantFace puts a good portrait, shrunk, into a large grey frame: a
// face of about 8% of the frame in a large enough photo is simply cropped
// (the supplier crops), the same framing in a smaller photo needs upscaling
// and is face_too_small, not no_face.
func TestDistantFace(t *testing.T) {
	src := decodeAll(t, readPhoto(t, "dev/pass_london_027_03.jpg"))
	frame := func(inner *rgb, size int) []byte {
		m := newRGB(size, size)
		for i := 0; i < len(m.pix); i += 3 {
			m.pix[i], m.pix[i+1], m.pix[i+2] = 202, 202, 202 // the London Set's grey
		}
		x0, y0 := (size-inner.w)/2, (size-inner.h)/2
		for y := 0; y < inner.h; y++ {
			copy(m.pix[3*((y0+y)*size+x0):], inner.pix[3*y*inner.w:3*(y+1)*inner.w])
		}
		return encodeJPEG(t, toRGBA(m))
	}
	big := CheckPhoto(frame(scaled(src, 0.4), 3600))
	if big.Verdict != VerdictPass {
		t.Errorf("face of %.3f in a 3600 px frame: %s %v", big.Metrics["face_size_rel"], big.Verdict, big.Reasons)
	}
	small := CheckPhoto(frame(scaled(src, 0.2), 1800))
	if !small.has(CodeFaceTooSmall) || small.has(CodeNoFace) {
		t.Errorf("face of %.3f in a 1800 px frame: %s %v", small.Metrics["face_size_rel"], small.Verdict, small.Reasons)
	}
	// Both faces are below minFaceFrac: the second, finer search found them.
	for _, r := range []*Result{big, small} {
		if rel := r.Metrics["face_size_rel"]; rel >= minFaceFrac || rel < smallFaceFrac {
			t.Errorf("face size %.3f does not exercise the small-face search", rel)
		}
	}
}
