package imaging

import (
	"encoding/binary"
	"math"
)

// Portrait regions, in portrait pixels. The placement puts the eye line at
// y=171 and the head from y≈24 (crown) to y≈309 (chin), so the same regions
// hold the same parts of every face.
var (
	faceRegion  = rect{80, 140, 220, 280} // eyes to chin, cheek to cheek
	leftCheek   = rect{88, 185, 135, 260}
	rightCheek  = rect{165, 185, 212, 260}
	sharpRegion = rect{95, 145, 205, 270} // eyes, nose, mouth: the detail that must be sharp
)

type rect struct{ x0, y0, x1, y1 int }

// Thresholds. Each turns a rule of the ID06 photo spec into a number with a
// margin on both sides of the photos we have; README.md gives the reasoning.
const (
	darkFaceLuma     = 70   // median face luma below this may be under-exposure...
	brightRefLuma    = 225  // ...if the photo's highlights (98th percentile) stay below this too
	maxFaceLuma      = 220  // median face luma above this has lost the skin texture
	maxClippedFrac   = 0.15 // share of face pixels at 250+ (burnt out)
	maxSideImbalance = 0.22 // |left - right| / mean of the cheek medians
	maxBgDarkFrac    = 0.30 // share of background that is dark or strongly coloured
	maxBgChroma      = 60   // median background saturation; pastel tints stay below
	maxBgSpread      = 50   // P90-P10 of background luma: shadows, two-tone walls
	maxBgEdgeFrac    = 0.04 // share of background on strong edges: objects, patterns
	minBgFrac        = 0.01 // less visible background than this is not judged
	minSharpness     = 0.30 // fine detail per unit of contrast, see sharpness
	maxBlockiness    = 3.0  // energy on the JPEG block grid vs. elsewhere
	minJPEGQuality   = 25   // IJG quality estimate below which detail is gone
)

func checkPortrait(gray []uint8, a *analysis, p placement, res *Result) {
	m := res.Metrics
	face := regionValues(gray, faceRegion)
	faceMed := percentile(face, 0.5)
	clipped := 0
	for _, v := range face {
		if v >= 250 {
			clipped++
		}
	}
	m["face_luma"] = round3(faceMed)
	m["face_clipped_frac"] = round3(float64(clipped) / float64(max(1, len(face))))
	// Dark skin is not under-exposure: the face only counts as too dark
	// when nothing else in the photo (background, clothes, eyes) is bright
	// either.
	if faceMed < darkFaceLuma && m["image_p98"] < brightRefLuma {
		res.add(CodeTooDark)
	}
	if faceMed > maxFaceLuma || m["face_clipped_frac"] > maxClippedFrac {
		res.add(CodeOverexposed)
	}
	l := percentile(regionValues(gray, leftCheek), 0.5)
	r := percentile(regionValues(gray, rightCheek), 0.5)
	imb := 0.0
	if l+r > 0 {
		imb = math.Abs(l-r) / ((l + r) / 2)
	}
	m["light_imbalance"] = round3(imb)
	if imb > maxSideImbalance {
		res.add(CodeUnevenLighting)
	}

	ex, ey := a.eyeMid()
	bg := measureBackground(a.work, ex, ey, a.face.size)
	m["bg_frac"] = round3(bg.frac)
	if bg.frac >= minBgFrac {
		m["bg_luma"], m["bg_chroma"] = round3(bg.luma), round3(bg.chroma)
		m["bg_spread"], m["bg_dark_frac"], m["bg_edge_frac"] = round3(bg.spread), round3(bg.darkFrac), round3(bg.edgeFrac)
		if bg.darkFrac > maxBgDarkFrac || bg.chroma > maxBgChroma {
			res.add(CodeBackgroundNotLight)
		}
		if bg.spread > maxBgSpread || bg.edgeFrac > maxBgEdgeFrac {
			res.add(CodeBackgroundUneven)
		}
	}

	sh := sharpness(gray)
	m["sharpness"] = round3(sh)
	// An upscaled portrait is soft because of the upscaling; that is
	// reported as face_too_small or resolution_too_low, not as blur.
	blurry := sh < minSharpness && p.k <= maxUpscale
	if b, ok := m["blockiness"]; ok && b > maxBlockiness {
		blurry = true
	}
	if q, ok := m["jpeg_quality"]; ok && q < minJPEGQuality {
		blurry = true
	}
	if blurry {
		res.add(CodeBlurry)
	}
	// The eye measures are contrasts; under- or over-exposure flattens them,
	// so the exposure is the reason to report, not the eyes. Likewise an
	// under-exposed photo has a dark background; once the exposure is fixed,
	// a background that is really dark is reported on the next upload.
	if res.has(CodeTooDark) || res.has(CodeOverexposed) {
		res.remove(CodeEyesNotVisible)
	}
	if res.has(CodeTooDark) {
		res.remove(CodeBackgroundNotLight)
	}
}

func regionValues(gray []uint8, r rect) []float64 {
	v := make([]float64, 0, (r.x1-r.x0)*(r.y1-r.y0))
	for y := r.y0; y < r.y1; y++ {
		for x := r.x0; x < r.x1; x++ {
			v = append(v, float64(gray[y*PortraitW+x]))
		}
	}
	return v
}

// sharpness is the fine detail of the eyes, nose and mouth (mean absolute
// Laplacian) per unit of contrast (mean absolute difference across two
// pixels) at portrait scale. Blur removes fine detail first, so the ratio
// drops; it does not depend on exposure or skin tone. JPEG blocking adds
// false fine detail, which blockiness and the quality estimate catch.
func sharpness(gray []uint8) float64 {
	r := sharpRegion
	w, h := r.x1-r.x0, r.y1-r.y0
	v := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v[y*w+x] = float64(gray[(r.y0+y)*PortraitW+r.x0+x])
		}
	}
	var contrast float64
	for y := 0; y+2 < h; y++ {
		for x := 0; x+2 < w; x++ {
			i := y*w + x
			contrast += math.Abs(v[i+2]-v[i]) + math.Abs(v[i+2*w]-v[i])
		}
	}
	contrast /= float64((w - 2) * (h - 2))
	if contrast <= 0 {
		return 0
	}
	return meanAbsLaplacian(v, w, h) / contrast
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
// quantisation table: the quality whose scaled (and, as libjpeg and Go do
// for baseline files, clamped to 1..255) standard table is closest. It
// returns 0 when there is no usable table.
func jpegQuality(data []byte) float64 {
	tbl, ok := lumaTable(data)
	if !ok {
		return 0
	}
	best, bestErr := 0, math.Inf(1)
	for q := 1; q <= 100; q++ {
		scale := 200 - 2*q
		if q < 50 {
			scale = 5000 / q
		}
		var e float64
		for k, base := range stdLuma {
			v := min(max((base*scale+50)/100, 1), 255)
			d := float64(v) - float64(tbl[k])
			e += d * d
		}
		if e < bestErr {
			best, bestErr = q, e
		}
	}
	return float64(best)
}

// lumaTable returns quantisation table 0 as the DQT segment stores it
// (zig-zag order).
func lumaTable(data []byte) ([64]int, bool) {
	var tbl [64]int
	i := 2
	for i+4 <= len(data) && i < maxHeaderScan {
		if data[i] != 0xFF {
			return tbl, false
		}
		m := data[i+1]
		if m == 0xDA || m == 0xD9 {
			return tbl, false
		}
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) || m == 0xFF {
			i++
			continue
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return tbl, false
		}
		seg := data[i+4 : i+2+n]
		for m == 0xDB && len(seg) > 0 {
			pq, tq := seg[0]>>4, seg[0]&15
			size := 64 * (1 + int(pq&1))
			if len(seg) < 1+size {
				return tbl, false
			}
			if tq == 0 {
				for k := range tbl {
					if pq&1 == 1 {
						tbl[k] = int(binary.BigEndian.Uint16(seg[1+2*k:]))
					} else {
						tbl[k] = int(seg[1+k])
					}
				}
				return tbl, true
			}
			seg = seg[1+size:]
		}
		i += 2 + n
	}
	return tbl, false
}

// stdLuma is the JPEG standard (Annex K) luminance table in zig-zag order,
// the order DQT segments store it in.
var stdLuma = [64]int{
	16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
	26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
	56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
	95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
}
