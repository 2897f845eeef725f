package imaging

import "math"

// bgStats describes the photo's background: the part of the working copy
// above the mouth line and outside a generous ellipse around the head, so
// that hair standing out from the head does not count as background.
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
	bgBelowEye     = 0.35 // background is measured down to about the mouth
	bgEdgeStep     = 24   // luma step between neighbours that counts as an edge
	bgDarkLuma     = 120  // a background pixel darker than this is not light
	bgColourChroma = 60   // or more saturated than this
)

func measureBackground(wi *workImage, ex, ey, s float64) bgStats {
	cx, cy := ex, ey-(eyeToCrown-eyeToChin)/2*s
	ax, ay := headHalfWidth*headMargin*s, headInS/2*headMargin*s
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
