package imaging

import "math"

// Face model, in units of pigo's face square side s, measured on the
// London Set portraits (frontal, crown and chin visible): the eye line lies
// 0.07 s above the square's centre, the chin (bottom of the jaw or beard)
// 0.60-0.68 s below the eye line and the crown (top of the head with
// normally styled hair) 0.63-0.72 s above it. The square itself ends near
// the mouth, not at the chin.
const (
	eyeAboveCentre = 0.07
	eyeToChin      = 0.64
	eyeToCrown     = 0.68
	headInS        = eyeToChin + eyeToCrown
	// IPD relative to s for a frontal face; outside this range puploc has
	// not found two pupils.
	ipdMin, ipdMax = 0.25, 0.55
	// Vertical eye position (relative to the square centre, units of s)
	// inside which puploc's answer is plausible.
	eyeDyMin, eyeDyMax = -0.25, 0.10
)

// Check thresholds. Each is a rule of the ID06 photo spec turned into a
// number with a margin, not fitted to particular photos; README.md explains
// them.
const (
	maxRollDeg     = 8.0  // spec: roll is corrected up to 8°, a larger tilt is a retake
	minEyeContrast = 0.40 // iris/pupil vs. brightest part of the eye opening
	minEyeBand     = 0.35 // eye band vs. cheek band, see eyeBandRatio
)

type analysis struct {
	face   *face
	eyes   eyes
	eyesOK bool
	work   *workImage
}

// analyse finds the face and the eyes on the working copy and records the
// face-level checks (count, roll, eyes).
func analyse(c *cascades, wi *workImage, res *Result) *analysis {
	a := &analysis{work: wi}
	faces := detectFaces(c, wi.gray, wi.w, wi.h)
	n := countFaces(faces)
	res.Metrics["faces"] = float64(n)
	if len(faces) == 0 {
		res.add(CodeNoFace)
		return a
	}
	f := faces[0]
	a.face = &f
	short := float64(min(wi.w, wi.h))
	res.Metrics["face_size_rel"] = round3(f.size / short)
	res.Metrics["face_score"] = round3(f.q)
	if n > 1 {
		res.add(CodeMultipleFaces)
	}

	e := findPupils(c, wi.pixels(), wi.w, wi.h, f)
	a.eyes = e
	_, my := e.mid()
	ipdRel := e.ipd() / f.size
	dy := (my - f.row) / f.size
	res.Metrics["ipd_rel"] = round3(ipdRel)
	plausible := ipdRel >= ipdMin && ipdRel <= ipdMax && dy >= eyeDyMin && dy <= eyeDyMax
	cl := eyeContrast(wi, e.lx, e.ly, e.ipd())
	cr := eyeContrast(wi, e.rx, e.ry, e.ipd())
	res.Metrics["eye_contrast"] = round3(math.Min(cl, cr))
	band := eyeBandRatio(wi, f)
	res.Metrics["eye_band_ratio"] = round3(band)
	a.eyesOK = plausible && math.Min(cl, cr) >= minEyeContrast && band >= minEyeBand
	if !a.eyesOK {
		res.add(CodeEyesNotVisible)
		return a
	}
	roll := e.rollDeg()
	res.Metrics["roll_deg"] = round3(roll)
	if math.Abs(roll) > maxRollDeg {
		res.add(CodeHeadTilted)
	}
	return a
}

// countFaces counts the main face and every other face that does not
// overlap it, is at least otherFaceFrac of its size and scores at least
// otherFaceQ of its score: pigo's clusters often leave a second,
// overlapping square on the same face, and weak detections on clothes or
// background patterns score a few percent of a real face.
func countFaces(fs []face) int {
	if len(fs) == 0 {
		return 0
	}
	m := fs[0]
	n := 1
	for _, f := range fs[1:] {
		if f.size < otherFaceFrac*m.size || f.q < otherFaceQ*m.q {
			continue
		}
		if math.Abs(f.col-m.col) < (f.size+m.size)/2 && math.Abs(f.row-m.row) < (f.size+m.size)/2 {
			continue
		}
		n++
	}
	return n
}

// eyeContrast returns, for one eye, the contrast between the darkest part
// of the iris disc and the brightest part of the eye opening. An open eye
// has a dark iris next to bright sclera; a covered or closed eye has
// neither. (Dark glasses are caught by eyeBandRatio, which does not depend
// on where puploc put the pupil.)
func eyeContrast(wi *workImage, x, y, ipd float64) float64 {
	g := wi.pixels()
	sample := func(x0, y0, x1, y1 float64, in func(dx, dy float64) bool) []float64 {
		var v []float64
		for yy := int(math.Floor(y0)); yy <= int(math.Ceil(y1)); yy++ {
			for xx := int(math.Floor(x0)); xx <= int(math.Ceil(x1)); xx++ {
				if xx < 0 || yy < 0 || xx >= wi.w || yy >= wi.h {
					continue
				}
				if in != nil && !in(float64(xx)-x, float64(yy)-y) {
					continue
				}
				v = append(v, float64(g[yy*wi.w+xx]))
			}
		}
		return v
	}
	r := math.Max(1.5, 0.07*ipd)
	iris := sample(x-r, y-r, x+r, y+r, func(dx, dy float64) bool { return dx*dx+dy*dy <= r*r })
	opening := sample(x-0.25*ipd, y-0.08*ipd, x+0.25*ipd, y+0.08*ipd, nil)
	if len(iris) == 0 || len(opening) == 0 {
		return 0
	}
	dark := percentile(iris, 0.2)
	bright := percentile(opening, 0.9)
	if bright <= 0 {
		return 0
	}
	return (bright - dark) / bright
}

// eyeBandRatio compares the band across both eyes with the band across the
// cheeks, both placed from the face square alone, so it does not depend on
// where puploc put the pupils. Eyes, brows and lashes make the eye band
// somewhat darker than the cheeks; dark glasses make it much darker.
func eyeBandRatio(wi *workImage, f face) float64 {
	g := wi.pixels()
	med := func(y0, y1 float64) float64 {
		var v []float64
		for y := max(0, int(f.row+y0*f.size)); y < min(wi.h, int(f.row+y1*f.size)); y++ {
			for x := max(0, int(f.col-0.32*f.size)); x < min(wi.w, int(f.col+0.32*f.size)); x++ {
				v = append(v, float64(g[y*wi.w+x]))
			}
		}
		return percentile(v, 0.5)
	}
	eye, cheek := med(-0.16, 0.0), med(0.08, 0.22)
	if cheek <= 0 {
		return 0
	}
	return eye / cheek
}

// placement computes where the portrait comes from: eye line at 45% from
// the top, chin-to-crown 75% of the height, centred on the eyes, roll
// corrected when it is small. Only for a found face.
func (a *analysis) placement() placement {
	f, wi := a.face, a.work
	ex, ey := a.eyeMid()
	roll := 0.0
	if a.eyesOK {
		if r := a.eyes.rollDeg(); math.Abs(r) <= maxRollFix {
			roll = r
		}
	}
	head := headInS * f.size * wi.scale // crown to chin, full-resolution pixels
	k := headFrac * PortraitH / head
	return placement{
		cx: ex * wi.scale, cy: ey * wi.scale,
		ox: PortraitW / 2, oy: eyeLineFrac * PortraitH,
		k: k, rollDeg: roll,
	}
}

// eyeMid is the eye midpoint in working pixels: from the pupils when they
// were confirmed, else from the face square.
func (a *analysis) eyeMid() (float64, float64) {
	if a.eyesOK {
		return a.eyes.mid()
	}
	return a.face.col, a.face.row - eyeAboveCentre*a.face.size
}
