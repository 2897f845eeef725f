package imaging

// The working copy used for detection and the global metrics has a long
// side of workMinSide..workMaxSide: enough for pigo to find a face of a
// tenth of the image, small enough to take a few milliseconds. The range
// lets an integer box reduction alone produce it for most sizes; the slower
// fractional resize only runs when that lands above workMaxSide.
const (
	workMinSide = 640
	workMaxSide = 720
)

// workImage is the luma plane at working resolution plus the factor back to
// full-resolution (oriented) coordinates.
type workImage struct {
	w, h  int
	col   *rgb    // colour at working resolution, for the background checks
	gray  []uint8 // len w*h plus slack, see newWork
	scale float64 // full-resolution pixels per working pixel
}

// newWork builds the working luma from a decoded raster that is 1/denom of
// full resolution. The buffer carries w+h bytes of slack after the image
// because pigo's rotated classifier clamps columns to the row count, which
// can index past the end of a portrait-format plane.
func newWork(m *rgb, denom int) *workImage {
	w, h := m.w, m.h
	scale := float64(denom)
	col := m
	// Integer box reduction first (cheap), then the fractional rest.
	if f := max(w, h) / workMinSide; f >= 2 {
		col = col.downsample(f)
		scale *= float64(f)
		w, h = col.w, col.h
	}
	if long := max(w, h); long > workMaxSide {
		f := float64(workMinSide) / float64(long)
		nw, nh := max(1, int(float64(w)*f+0.5)), max(1, int(float64(h)*f+0.5))
		col = &rgb{w: nw, h: nh, pix: resizeArea(col.pix, w, h, nw, nh)}
		scale *= float64(w) / float64(nw)
		w, h = nw, nh
	}
	buf := make([]uint8, w*h+w+h)
	copy(buf, col.luma())
	return &workImage{w: w, h: h, col: col, gray: buf, scale: scale}
}

func (wi *workImage) pixels() []uint8 { return wi.gray[:wi.w*wi.h] }

// lumaPercentile returns the p-th percentile (0..1) of the working luma.
func (wi *workImage) lumaPercentile(p float64) float64 {
	var hist [256]int
	for _, v := range wi.pixels() {
		hist[v]++
	}
	return float64(percentileHist(&hist, wi.w*wi.h, p))
}
