package imaging

import (
	"encoding/binary"
	"math"
)

// Portrait regions, in portrait pixels. The placement puts the eye line at
// y=171 and the head from y≈7 (crown) to y≈292 (chin), so the same regions
// hold the same parts of every face.
var (
	faceRegion  = rect{80, 140, 220, 280} // eyes to chin, cheek to cheek
	leftCheek   = rect{88, 185, 135, 260}
	rightCheek  = rect{165, 185, 212, 260}
	sharpRegion = rect{95, 145, 205, 270} // eyes, nose, mouth: the detail that must be sharp
)

type rect struct{ x0, y0, x1, y1 int }

// headEllipse contains the head with hair and a margin; background pixels
// are the ones above the mouth line outside it.
func inHead(x, y int) bool {
	const cx, cy, a, b = 150.0, 150.0, 125.0, 160.0
	dx, dy := (float64(x)-cx)/a, (float64(y)-cy)/b
	return dx*dx+dy*dy <= 1
}

const backgroundBottom = 230 // below this, shoulders and clothes

// Thresholds on the 0..255 luma scale of the portrait before levelling.
const (
	minFaceLuma      = 70   // median face brightness below this is "too dark"
	maxFaceLuma      = 225  // median above this has lost the skin texture
	maxClippedFrac   = 0.20 // share of face pixels at 250+ (burnt out)
	maxSideImbalance = 0.30 // |left - right| / mean of cheek medians
	minBgLuma        = 150  // light background
	maxBgChroma      = 60   // neutral: max-min of R,G,B; pastel tints stay below
	maxBgSpread      = 60   // P95-P5 of background luma
	maxBgTexture     = 6.0  // mean |gradient| in the background
	minSharpness     = 0.45 // fine/coarse detail ratio, see sharpness
	maxBlockiness    = 1.5  // energy on 8x8 block edges vs. elsewhere
	minJPEGQuality   = 20   // IJG quality estimate below which detail is gone
)

func checkPortrait(col *rgb, gray []uint8, a *analysis, p placement, res *Result) {
	m := res.Metrics
	face := regionValues(gray, faceRegion, nil)
	faceMed := percentile(face, 0.5)
	clipped := 0
	for _, v := range face {
		if v >= 250 {
			clipped++
		}
	}
	m["face_luma"] = round3(faceMed)
	m["face_clipped_frac"] = round3(float64(clipped) / float64(max(1, len(face))))
	if faceMed < minFaceLuma {
		res.add(CodeTooDark)
	}
	if faceMed > maxFaceLuma || m["face_clipped_frac"] > maxClippedFrac {
		res.add(CodeOverexposed)
	}
	l := percentile(regionValues(gray, leftCheek, nil), 0.5)
	r := percentile(regionValues(gray, rightCheek, nil), 0.5)
	imb := 0.0
	if l+r > 0 {
		imb = math.Abs(l-r) / ((l + r) / 2)
	}
	m["light_imbalance"] = round3(imb)
	if imb > maxSideImbalance {
		res.add(CodeUnevenLighting)
	}

	bgLuma, bgChroma, bgSpread, bgTex := background(col, gray)
	m["bg_luma"], m["bg_chroma"] = round3(bgLuma), round3(bgChroma)
	m["bg_spread"], m["bg_texture"] = round3(bgSpread), round3(bgTex)
	if bgLuma < minBgLuma || bgChroma > maxBgChroma {
		res.add(CodeBackgroundNotLight)
	}
	if bgSpread > maxBgSpread || bgTex > maxBgTexture {
		res.add(CodeBackgroundUneven)
	}

	sh := sharpness(gray)
	m["sharpness"] = round3(sh)
	blurry := sh < minSharpness
	if b, ok := m["blockiness"]; ok && b > maxBlockiness {
		blurry = true
	}
	if q, ok := m["jpeg_quality"]; ok && q < minJPEGQuality {
		blurry = true
	}
	if blurry {
		res.add(CodeBlurry)
	}
}

func regionValues(gray []uint8, r rect, keep func(x, y int) bool) []float64 {
	v := make([]float64, 0, (r.x1-r.x0)*(r.y1-r.y0))
	for y := r.y0; y < r.y1; y++ {
		for x := r.x0; x < r.x1; x++ {
			if keep == nil || keep(x, y) {
				v = append(v, float64(gray[y*PortraitW+x]))
			}
		}
	}
	return v
}

// background measures the portrait's background (top corners and sides
// beside the head): median luma, median chroma, luma spread and texture.
func background(col *rgb, gray []uint8) (luma, chroma, spread, texture float64) {
	var lv, cv []float64
	var tex float64
	var nt int
	for y := 0; y < backgroundBottom; y++ {
		for x := 0; x < PortraitW; x++ {
			if inHead(x, y) {
				continue
			}
			i := y*PortraitW + x
			lv = append(lv, float64(gray[i]))
			r, g, b := col.pix[3*i], col.pix[3*i+1], col.pix[3*i+2]
			cv = append(cv, float64(max(r, g, b)-min(r, g, b)))
			if x+1 < PortraitW && y+1 < backgroundBottom && !inHead(x+1, y) && !inHead(x, y+1) {
				dx := math.Abs(float64(gray[i+1]) - float64(gray[i]))
				dy := math.Abs(float64(gray[i+PortraitW]) - float64(gray[i]))
				tex += dx + dy
				nt++
			}
		}
	}
	if len(lv) == 0 {
		return 0, 0, 0, 0
	}
	luma = percentile(lv, 0.5)
	spread = percentile(lv, 0.95) - percentile(lv, 0.05)
	chroma = percentile(cv, 0.5)
	if nt > 0 {
		texture = tex / float64(nt)
	}
	return
}

// sharpness compares fine detail (Laplacian at portrait scale) with coarse
// detail (Laplacian after 2x reduction) over the eyes, nose and mouth. A
// sharp face has fine detail comparable to its coarse detail; blur removes
// the fine part first. The ratio does not depend on contrast or exposure.
func sharpness(gray []uint8) float64 {
	r := sharpRegion
	w, h := r.x1-r.x0, r.y1-r.y0
	fine := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fine[y*w+x] = float64(gray[(r.y0+y)*PortraitW+r.x0+x])
		}
	}
	coarse := make([]float64, (w/2)*(h/2))
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			coarse[y*(w/2)+x] = (fine[2*y*w+2*x] + fine[2*y*w+2*x+1] + fine[(2*y+1)*w+2*x] + fine[(2*y+1)*w+2*x+1]) / 4
		}
	}
	lf, lc := meanAbsLaplacian(fine, w, h), meanAbsLaplacian(coarse, w/2, h/2)
	if lc <= 0 {
		return 0
	}
	return lf / lc
}

func meanAbsLaplacian(v []float64, w, h int) float64 {
	var s float64
	n := 0
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			s += math.Abs(4*v[i] - v[i-1] - v[i+1] - v[i-w] - v[i+w])
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// blockiness measures JPEG blocking on the decoded raster: the mean step
// between neighbouring pixels on the strongest phase of the block grid
// divided by the mean step on the other phases. Natural detail has no
// preferred phase (ratio near 1); heavy compression puts the steps on the
// block edges. The phase is searched, so EXIF rotation does not matter.
// It needs blocks of at least 4 pixels, i.e. a decode at 1/1 or 1/2.
func blockiness(m *rgb, denom int) float64 {
	if denom > 2 {
		return 0
	}
	bs := 8 / denom
	g := m.luma()
	ph := make([]float64, bs)
	pv := make([]float64, bs)
	for y := 0; y+1 < m.h; y++ {
		for x := 0; x+1 < m.w; x++ {
			i := y*m.w + x
			ph[x%bs] += math.Abs(float64(g[i+1]) - float64(g[i]))
			pv[y%bs] += math.Abs(float64(g[i+m.w]) - float64(g[i]))
		}
	}
	ratio := func(p []float64) float64 {
		best, sum := 0, 0.0
		for i, v := range p {
			sum += v
			if v > p[best] {
				best = i
			}
		}
		rest := (sum - p[best]) / float64(len(p)-1)
		if rest <= 0 {
			return 0
		}
		return p[best] / rest
	}
	return (ratio(ph) + ratio(pv)) / 2
}

// jpegQuality estimates the IJG quality setting from the first luminance
// quantisation table (the scaling libjpeg applies to the standard table).
// It returns 0 when there is no usable table.
func jpegQuality(data []byte) float64 {
	i := 2
	for i+4 <= len(data) && i < maxHeaderScan {
		if data[i] != 0xFF {
			return 0
		}
		m := data[i+1]
		if m == 0xDA || m == 0xD9 {
			return 0
		}
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) || m == 0xFF {
			i++
			continue
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return 0
		}
		seg := data[i+4 : i+2+n]
		if m == 0xDB {
			for len(seg) > 0 {
				pq, tq := seg[0]>>4, seg[0]&15
				size := 64
				if pq == 1 {
					size = 128
				}
				if len(seg) < 1+size {
					return 0
				}
				if tq == 0 {
					var sum float64
					for k := 0; k < 64; k++ {
						if pq == 1 {
							sum += float64(binary.BigEndian.Uint16(seg[1+2*k:]))
						} else {
							sum += float64(seg[1+k])
						}
					}
					s := 100 * sum / stdLumaSum
					if s <= 100 {
						return math.Min(100, (200-s)/2)
					}
					return 5000 / s
				}
				seg = seg[1+size:]
			}
		}
		i += 2 + n
	}
	return 0
}

// stdLumaSum is the sum of the JPEG standard (Annex K) luminance table.
const stdLumaSum = 16 + 11 + 10 + 16 + 24 + 40 + 51 + 61 +
	12 + 12 + 14 + 19 + 26 + 58 + 60 + 55 +
	14 + 13 + 16 + 24 + 40 + 57 + 69 + 56 +
	14 + 17 + 22 + 29 + 51 + 87 + 80 + 62 +
	18 + 22 + 37 + 56 + 68 + 109 + 103 + 77 +
	24 + 35 + 55 + 64 + 81 + 104 + 113 + 92 +
	49 + 64 + 78 + 87 + 103 + 121 + 120 + 101 +
	72 + 92 + 95 + 98 + 112 + 100 + 103 + 99
