package imaging

import "math"

// bgStats describes the photo's background: the part of the working copy
// above the mouth line and outside an ellipse around the head.
type bgStats struct {
	n        int     // pixels measured
	frac     float64 // share of the image they make up
	luma     float64 // median luma
	chroma   float64 // median of max(R,G,B)-min(R,G,B)
	spread   float64 // P90-P10 of luma: shadows, gradients, two-tone walls
	darkFrac float64 // share of pixels that are dark or strongly coloured
	edgeFrac float64 // share of pixels on a strong edge: objects, patterns
}

const (
	headHalfWidth  = 0.55 // head half-width (ears, flat hair) in units of s
	headMargin     = 1.3  // room for hair standing out
	farMargin      = 1.7  // beyond this, even voluminous hair is rare
	minFarFrac     = 0.05 // enough far background to judge on it alone
	bgBelowEye     = 0.35 // background is measured down to about the mouth
	bgEdgeStep     = 24   // luma step between neighbours that counts as an edge
	bgDarkLuma     = 120  // a background pixel darker than this is not light
	bgColourChroma = 60   // or more saturated than this
)

// measureBackground judges the background well away from the head (outside
// farMargin) when the photo shows enough of it, so that hair does not count
// as a busy background; a tightly framed photo is judged on what there is
// outside headMargin.
func measureBackground(wi *workImage, ex, ey, s float64) bgStats {
	if far := backgroundOutside(wi, ex, ey, s, farMargin); far.frac >= minFarFrac {
		return far
	}
	return backgroundOutside(wi, ex, ey, s, headMargin)
}

func backgroundOutside(wi *workImage, ex, ey, s, margin float64) bgStats {
	cx, cy := ex, ey-(eyeToCrown-eyeToChin)/2*s
	ax, ay := headHalfWidth*margin*s, headInS/2*margin*s
	yMax := min(wi.h-1, int(ey+bgBelowEye*s))
	g := wi.pixels()
	var lh, ch [256]int
	var n, dark, edges int
	for y := 0; y < yMax; y++ {
		for x := 0; x+1 < wi.w; x++ {
			dx, dy := (float64(x)-cx)/ax, (float64(y)-cy)/ay
			if dx*dx+dy*dy <= 1 {
				continue
			}
			i := y*wi.w + x
			l := float64(g[i])
			r, gg, b := wi.col.pix[3*i], wi.col.pix[3*i+1], wi.col.pix[3*i+2]
			c := float64(max(r, gg, b) - min(r, gg, b))
			lh[g[i]]++
			ch[int(c)]++
			n++
			if l < bgDarkLuma || c > bgColourChroma {
				dark++
			}
			step := math.Abs(float64(g[i+1])-l) + math.Abs(float64(g[i+wi.w])-l)
			if step > bgEdgeStep {
				edges++
			}
		}
	}
	st := bgStats{n: n}
	if n == 0 {
		return st
	}
	st.frac = float64(n) / float64(wi.w*wi.h)
	st.luma = float64(percentileHist(&lh, n, 0.5))
	st.spread = float64(percentileHist(&lh, n, 0.9) - percentileHist(&lh, n, 0.1))
	st.chroma = float64(percentileHist(&ch, n, 0.5))
	st.darkFrac = float64(dark) / float64(st.n)
	st.edgeFrac = float64(edges) / float64(st.n)
	return st
}
