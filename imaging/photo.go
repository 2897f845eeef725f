package imaging

import (
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"

	"id06/order"
)

// Crop is where the portrait came from, in full-resolution source pixels
// after EXIF orientation: the rectangle before roll correction, the roll
// that was corrected and the portrait pixels per source pixel.
type Crop struct {
	X       int     `json:"x"`
	Y       int     `json:"y"`
	W       int     `json:"w"`
	H       int     `json:"h"`
	RollDeg float64 `json:"roll_deg"`
	Scale   float64 `json:"scale"`
}

// Verdicts.
const (
	VerdictPass       = "pass"
	VerdictFail       = "fail"
	VerdictUnreadable = "unreadable"
)

// Result is the outcome of the photo stage.
type Result struct {
	Verdict  string             `json:"verdict"`
	Reasons  []order.Reason     `json:"reasons"`
	Metrics  map[string]float64 `json:"metrics"`
	Crop     *Crop              `json:"crop,omitempty"`
	Portrait *image.Gray        `json:"-"` // 300x380, auto-levelled; set whenever the image decodes
	ChipJPEG []byte             `json:"-"` // JPEG of Portrait for the chip's facial image
}

func (r *Result) add(code string) {
	for _, x := range r.Reasons {
		if x.Code == code {
			return
		}
	}
	r.Reasons = append(r.Reasons, ReasonFor(code))
}

func (r *Result) remove(code string) {
	out := r.Reasons[:0]
	for _, x := range r.Reasons {
		if x.Code != code {
			out = append(out, x)
		}
	}
	r.Reasons = out
}

func (r *Result) has(code string) bool {
	for _, x := range r.Reasons {
		if x.Code == code {
			return true
		}
	}
	return false
}

// CheckPhoto runs decode → detect → checks → crop → encode on an uploaded
// photo. It is safe for concurrent use and never panics.
func CheckPhoto(data []byte) (res *Result) {
	defer func() {
		// Last line of defence only: every input path is bounds-checked, but a
		// decoder bug must not take the station down with an order.
		if p := recover(); p != nil {
			slog.Error("imaging: panic while checking a photo", "panic", fmt.Sprint(p))
			res = &Result{Verdict: VerdictUnreadable, Reasons: []order.Reason{ReasonFor(CodeUnreadable)}, Metrics: map[string]float64{}}
		}
	}()
	return evaluate(data)
}

// evaluate is CheckPhoto without the recover, so that the fuzz target sees
// panics instead of "unreadable".
func evaluate(data []byte) *Result {
	res := &Result{Reasons: []order.Reason{}, Metrics: map[string]float64{}}
	checkPhoto(data, res)
	switch {
	case res.Verdict == VerdictUnreadable:
	case len(res.Reasons) > 0:
		res.Verdict = VerdictFail
	default:
		res.Verdict = VerdictPass
	}
	return res
}

// decodeLongSide is the smallest long side the first decode may have. At
// 1600 px a typical upload needs no second decode for the portrait; the
// finer scale costs little because entropy decoding, the same at every
// scale, dominates (12 MP: 1/2 scale ~23 ms, 1/4 ~20 ms, a second decode
// another ~20 ms).
const decodeLongSide = 1600

func checkPhoto(data []byte, res *Result) {
	h, herr := parseHeader(data)
	if herr == nil {
		herr = checkCost(h, firstDenom(h))
	}
	if herr != nil {
		res.Verdict = VerdictUnreadable
		res.add(herr.Code)
		return
	}
	ow, oh := h.orientedSize()
	res.Metrics["width"], res.Metrics["height"] = float64(ow), float64(oh)
	if ow < MinPhotoW || oh < MinPhotoH {
		// Still analysed: the orderer gets every reason at once.
		res.add(CodeResolutionTooLow)
	}
	if h.format == formatJPEG {
		if q := jpegQuality(data); q > 0 {
			res.Metrics["jpeg_quality"] = q
		}
	}
	// One decode serves detection and, usually, the portrait: entropy
	// decoding costs the same at every DCT scale, so a second decode is only
	// worth it when the face is so small that the portrait needs more pixels,
	// and then only of the portrait's region.
	d := firstDenom(h)
	cost := stageCost(h, d)
	stageBudget.acquire(cost)
	defer stageBudget.release(cost)
	src := &source{data: data, h: h}
	m, err := src.decode(d, src.bounds(d))
	if err != nil {
		res.Verdict = VerdictUnreadable
		res.add(decodeFailureCode(err))
		return
	}
	c, err := loadCascades()
	if err != nil {
		// The cascades are embedded; failing to unpack them is a build defect.
		panic(err)
	}
	wi := newWork(m, d)
	res.Metrics["image_p98"] = wi.lumaPercentile(0.98)
	a := analyse(c, wi, res)
	p := centredPlacement(float64(ow), float64(oh))
	if a.face != nil {
		p = a.placement()
	}
	res.Metrics["portrait_scale"] = round3(p.k)
	if a.face != nil {
		res.Crop = p.crop()
		if p.k > maxUpscale && !res.has(CodeResolutionTooLow) {
			res.add(CodeFaceTooSmall)
		}
		top, side, bottom := overflow(p, float64(ow), float64(oh))
		res.Metrics["crop_overflow_top"] = round3(top)
		res.Metrics["crop_overflow_side"] = round3(side)
		res.Metrics["crop_overflow_bottom"] = round3(bottom)
		if top > maxTopOverflow || side > maxSideOverflow || bottom > 0 {
			res.add(CodeHeadCutOff)
		}
	}
	win, f := portraitWindow(image.Rect(0, 0, m.w, m.h), d, p)
	var cut *rgb
	if fd := finerDenom(d, p.k); fd < d {
		// The portrait needs more pixels than the first decode has: decode
		// again at the largest reduction that does not upscale, but only
		// the portrait's window, so memory does not grow with the photo.
		d = fd
		win, f = portraitWindow(src.bounds(d), d, p)
		if cut, err = src.decode(d, win); err != nil {
			res.Verdict = VerdictUnreadable
			res.add(decodeFailureCode(err))
			return
		}
	} else {
		cut = m.sub(win)
	}
	region := raster{m: cut.downsample(f), x0: win.Min.X / f, y0: win.Min.Y / f, denom: d * f}
	if bq := blockiness(cut, d); bq > 0 {
		res.Metrics["blockiness"] = round3(bq)
	}
	gray := render(region, p).luma()
	if a.face != nil {
		checkPortrait(gray, a, p, res)
	}
	autoLevels(gray)
	res.Portrait = grayImage(gray, PortraitW, PortraitH)
	chip, err := encodeChipJPEG(res.Portrait)
	if err != nil {
		panic(err) // encoding an in-memory *image.Gray cannot fail
	}
	res.ChipJPEG = chip
	res.Metrics["chip_jpeg_bytes"] = float64(len(chip))
}

// finerDenom is the largest DCT reduction at most d whose pixels are not
// upscaled by a portrait at k portrait pixels per source pixel.
func finerDenom(d int, k float64) int {
	for d > 1 && k*float64(d) > 1 {
		d /= 2
	}
	return d
}

// decodeFailureCode is the reason for a photo that does not decode: too
// large for the memory a photo may use, or unreadable (damaged, truncated,
// unsupported).
func decodeFailureCode(err error) string {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return CodeTooLarge
	}
	return CodeUnreadable
}

// How far the portrait window may reach beyond the photo before the head
// counts as cut off. Above the crown the spec portrait has about 6% of its
// height; up to 3% of it may be missing (filled with repeated edge pixels),
// which is the uncertainty of the head estimate: a photo framed exactly to
// the spec, checked again, must pass. At the sides the window may
// miss 5% of its width: that strip lies beside the head, is filled by
// repeating the photo's edge (plain background), and it lets a standard
// 35x45 mm passport photo, a little narrower than the card's 300:380 at 75%
// head height, through.
const (
	maxTopOverflow  = 0.03
	maxSideOverflow = 0.05
)

// overflow returns by how much the portrait window sticks out of the photo
// at the top and the sides (fractions of its height and width), and at the
// bottom. Below the chin only a quarter of the portrait's bottom margin is
// required: a photo that ends at the shoulders is acceptable, one that ends
// at the chin is not.
func overflow(p placement, w, h float64) (top, side, bottom float64) {
	c := p.crop()
	x0, y0 := float64(c.X), float64(c.Y)
	x1 := x0 + float64(c.W)
	chinBelowEye := headFrac * PortraitH * eyeToChin / headInS // portrait pixels
	chin := p.cy + chinBelowEye/p.k
	need := chin + 0.25*(PortraitH*(1-eyeLineFrac)-chinBelowEye)/p.k
	top = math.Max(0, -y0) / float64(c.H)
	side = math.Max(0, math.Max(-x0, x1-w)) / float64(c.W)
	bottom = math.Max(0, need-h) / float64(c.H)
	return top, side, bottom
}

// centredPlacement is the fallback crop when no usable face was found: the
// largest 300:380 window in the middle of the image, so that an operator
// who overrides the verdict still gets a portrait.
func centredPlacement(w, h float64) placement {
	k := math.Min(PortraitW/w, PortraitH/h)
	return placement{cx: w / 2, cy: h / 2, ox: PortraitW / 2, oy: PortraitH / 2, k: math.Min(k, maxUpscale)}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
