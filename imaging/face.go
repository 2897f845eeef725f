package imaging

import (
	_ "embed"
	"math"
	"sort"
	"sync"

	pigo "github.com/esimov/pigo/core"
)

// Cascades from github.com/esimov/pigo v1.4.6 (MIT, see cascade/LICENSE-pigo).
var (
	//go:embed cascade/facefinder
	facefinderCascade []byte
	//go:embed cascade/puploc
	puplocCascade []byte
)

type cascades struct {
	face *pigo.Pigo
	pup  *pigo.PuplocCascade
}

// loadCascades unpacks the embedded cascades once; the unpacked trees are
// read-only afterwards, so they are shared by concurrent checks.
var loadCascades = sync.OnceValues(func() (*cascades, error) {
	f, err := pigo.NewPigo().Unpack(facefinderCascade)
	if err != nil {
		return nil, err
	}
	p, err := pigo.NewPuplocCascade().UnpackCascade(puplocCascade)
	if err != nil {
		return nil, err
	}
	return &cascades{face: f, pup: p}, nil
})

// Detection tuning. The minimum face is relative to the image so that the
// same photo at another resolution gives the same answer.
const (
	minFaceFrac   = 0.10 // smallest face searched first, as a fraction of the working image's short side
	smallFaceFrac = 0.05 // smallest face searched when there is none of minFaceFrac (4x the windows, so only then)
	faceQuality   = 10.0 // cluster score below which pigo detections are noise: textures score 5-7, frontal portraits 44-400, a cap and an old print 14
	otherFaceFrac = 0.45 // a second face at least this fraction of the main face's size counts...
	otherFaceQ    = 0.2  // ...if its score is at least this fraction of the main face's
	puplocPerturb = 63   // pigo's maximum; also avoids its pooled buffer holding stale values
)

type face struct {
	row, col, size float64 // centre and side of pigo's square, working-image pixels
	q              float64
	angle          float64 // cascade rotation it was found at, fraction of a turn
}

type eyes struct {
	lx, ly, rx, ry float64 // left/right as seen in the image (left = smaller x)
}

func (e eyes) ipd() float64            { return math.Hypot(e.rx-e.lx, e.ry-e.ly) }
func (e eyes) rollDeg() float64        { return math.Atan2(e.ry-e.ly, e.rx-e.lx) * 180 / math.Pi }
func (e eyes) mid() (float64, float64) { return (e.lx + e.rx) / 2, (e.ly + e.ry) / 2 }

// detectFaces runs the face cascade upright and, when nothing is found, at
// a small angle either way (a head rolled 15° must still be found so that it
// can be reported as tilted rather than as "no face"), then for faces down
// to smallFaceFrac (a person photographed from afar is face_too_small or,
// in a large enough photo, simply cropped, rather than "no face").
func detectFaces(c *cascades, gray []uint8, w, h int) []face {
	for _, try := range []struct{ minFrac, angle float64 }{
		{minFaceFrac, 0}, {minFaceFrac, 0.04}, {minFaceFrac, 0.97}, // angles in turns: 0, +11.25°, -11.25° (pigo quantises to 1/32)
		{smallFaceFrac, 0},
	} {
		if fs := detectAt(c, gray, w, h, try.minFrac, try.angle); len(fs) > 0 {
			return fs
		}
	}
	return nil
}

func detectAt(c *cascades, gray []uint8, w, h int, minFrac, angle float64) []face {
	short := min(w, h)
	minSize := max(20, int(minFrac*float64(short)))
	if minSize > short {
		return nil
	}
	params := pigo.CascadeParams{
		MinSize:     minSize,
		MaxSize:     short,
		ShiftFactor: 0.1,
		ScaleFactor: 1.1,
		ImageParams: pigo.ImageParams{Pixels: gray, Rows: h, Cols: w, Dim: w},
	}
	// The scan is split by window size into two halves of equal work that
	// run in parallel; the halves visit exactly the sizes one scan would.
	lo, hi := params, params
	lo.MaxSize, hi.MinSize = splitScales(minSize, short, params.ScaleFactor)
	var raw []pigo.Detection
	if hi.MinSize <= hi.MaxSize {
		var wg sync.WaitGroup
		var upper []pigo.Detection
		wg.Go(func() { upper = c.face.RunCascade(hi, angle) })
		raw = c.face.RunCascade(lo, angle)
		wg.Wait()
		raw = append(raw, upper...)
	} else {
		raw = c.face.RunCascade(params, angle)
	}
	dets := c.face.ClusterDetections(raw, 0.2)
	var out []face
	for _, d := range dets {
		if float64(d.Q) < faceQuality {
			continue
		}
		out = append(out, face{row: float64(d.Row), col: float64(d.Col), size: float64(d.Scale), q: float64(d.Q), angle: angle})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].q*out[i].size > out[j].q*out[j].size })
	return out
}

// splitScales follows pigo's window-size sequence (RunCascade's recurrence)
// from minSize to maxSize and returns the last size of the first half and
// the first size of the second, balancing the number of windows (which
// falls with the square of the size).
func splitScales(minSize, maxSize int, factor float64) (int, int) {
	var sizes []int
	var cost []float64
	total := 0.0
	for s := minSize; s <= maxSize; s = int(float64(s) + math.Max(2, float64(s)*factor-float64(s))) {
		sizes = append(sizes, s)
		c := 1 / (float64(s) * float64(s))
		cost = append(cost, c)
		total += c
	}
	acc := 0.0
	for i, c := range cost {
		acc += c
		if acc >= total/2 && i+1 < len(sizes) {
			return sizes[i], sizes[i+1]
		}
	}
	return maxSize, maxSize + 1
}

// findPupils places both pupils with puploc, seeded at the positions pigo's
// own examples use relative to the face square, turned with the square when
// the face was found by the rotated cascade.
func findPupils(c *cascades, gray []uint8, w, h int, f face) eyes {
	img := pigo.ImageParams{Pixels: gray, Rows: h, Cols: w, Dim: w}
	// pigo's rotation tables have 32 steps per turn and its row/column
	// convention: row' = r + cos·dr − sin·dc, col' = c + sin·dr + cos·dc.
	sin, cos := math.Sincos(math.Floor(32*f.angle) / 32 * 2 * math.Pi)
	seed := func(dc float64) *pigo.Puploc {
		dr := -0.075 * f.size
		dc *= f.size
		return c.pup.RunDetector(pigo.Puploc{
			Row:      int(f.row + cos*dr - sin*dc),
			Col:      int(f.col + sin*dr + cos*dc),
			Scale:    float32(f.size * 0.25),
			Perturbs: puplocPerturb,
		}, img, f.angle, false)
	}
	l, r := seed(-0.175), seed(0.185)
	e := eyes{lx: float64(l.Col), ly: float64(l.Row), rx: float64(r.Col), ry: float64(r.Row)}
	if e.lx > e.rx {
		e.lx, e.ly, e.rx, e.ry = e.rx, e.ry, e.lx, e.ly
	}
	return e
}
