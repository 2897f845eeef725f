package imaging

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"testing"
)

// randomPNG writes a w x h PNG of the given colour type and depth whose
// rows are random bytes under random filter types: every byte stream is a
// valid filtered image, so it exercises each filter, bit depth and
// interlace pass with content no encoder would choose.
func randomPNG(r *rand.Rand, w, h, ct, depth int, interlaced, trns bool) []byte {
	bitsPP := depth * pngChannels[ct]
	var raw bytes.Buffer
	z := zlib.NewWriter(&raw)
	passes := [][4]int{{0, 0, 1, 1}}
	if interlaced {
		passes = adam7[:]
	}
	for _, ps := range passes {
		pw, ph := (w-ps[0]+ps[2]-1)/ps[2], (h-ps[1]+ps[3]-1)/ps[3]
		if pw <= 0 || ph <= 0 {
			continue
		}
		row := make([]byte, 1+(bitsPP*pw+7)/8)
		for y := 0; y < ph; y++ {
			for i := range row {
				row[i] = byte(r.UintN(256))
			}
			row[0] = byte(r.IntN(5))
			if y == 0 && ps[1] == 0 && ps[0] == 0 { // the first pixel black, unfiltered
				row[0] = 0
				clear(row[1 : 1+(bitsPP+7)/8])
			}
			z.Write(row)
		}
	}
	z.Close()
	ihdr := append(appendUint32s(w, h), byte(depth), byte(ct), 0, 0, 0)
	if interlaced {
		ihdr[12] = 1
	}
	out := appendChunk(append([]byte{}, pngSignature...), "IHDR", ihdr)
	if ct == 3 {
		n := 1 << depth
		pal := make([]byte, 3*n)
		for i := range pal {
			pal[i] = byte(r.UintN(256))
		}
		out = appendChunk(out, "PLTE", pal[:3*(n-n/4)]) // some indexes beyond the palette
		if trns {
			a := make([]byte, n/2)
			for i := range a {
				a[i] = byte(r.UintN(256))
			}
			out = appendChunk(out, "tRNS", a)
		}
	} else if trns && (ct == 0 || ct == 2) {
		// Black is transparent: random data hits it often at low depths,
		// and it turns white only if the key is honoured.
		out = appendChunk(out, "tRNS", make([]byte, 2*pngChannels[ct]))
	}
	out = appendChunk(out, "IDAT", raw.Bytes())
	return appendChunk(out, "IEND", nil)
}

// TestDecodePNGMatchesImagePNG compares the streaming decoder with
// image/png (scaled by the same reduction) over every colour type, bit
// depth, interlacing and transparency PNG allows.
func TestDecodePNGMatchesImagePNG(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for ct, depths := range map[int][]int{0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}} {
		for _, depth := range depths {
			for _, interlaced := range []bool{false, true} {
				for _, trns := range []bool{false, true} {
					name := fmt.Sprintf("type %d depth %d interlaced %v tRNS %v", ct, depth, interlaced, trns)
					data := randomPNG(r, 37, 29, ct, depth, interlaced, trns)
					img, err := png.Decode(bytes.NewReader(data))
					if err != nil {
						t.Fatalf("%s: image/png: %v", name, err)
					}
					for _, d := range []int{1, 2, 4} {
						w, h := scaledSize(37, 29, d)
						full := image.Rect(0, 0, w, h)
						want := scaleImage(img, d, full)
						got, err := decodePNG(data, d, full)
						if err != nil {
							t.Fatalf("%s 1/%d: %v", name, d, err)
						}
						if i := firstDiff(got.pix, want.pix, 1); i >= 0 {
							t.Fatalf("%s 1/%d: pixel %d is %v, image/png %v", name, d, i/3, got.pix[i/3*3:i/3*3+3], want.pix[i/3*3:i/3*3+3])
						}
						// A region decodes to the same pixels as the whole.
						reg := image.Rect(w/3, h/4, w-1, h/2+1)
						part, err := decodePNG(data, d, reg)
						if err != nil {
							t.Fatal(err)
						}
						if i := firstDiff(part.pix, got.sub(reg).pix, 0); i >= 0 {
							t.Fatalf("%s 1/%d: region differs at %d", name, d, i)
						}
					}
				}
			}
		}
	}
}

// firstDiff is the first index where a and b differ by more than tol, or -1.
func firstDiff(a, b []uint8, tol int) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > tol || d < -tol {
			return i
		}
	}
	return -1
}
