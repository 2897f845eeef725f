package imaging

import (
	"fmt"
	"sync"
)

// Memory of the photo stage. Each photo is charged an upper bound of what
// its decode holds at once (stageCost) before any pixel is decoded: more
// than photoMemoryLimit is refused as image_too_large, and all running
// stages together hold at most memoryBudget, so concurrent stages on large
// images wait for each other instead of adding up. A 12 MP JPEG is charged
// 21 MB, a 50 MP 16-bit PNG (streamed) 39 MB, a 50 MP progressive 4:2:0
// JPEG (libjpeg keeps every coefficient) 166 MB.
const (
	photoMemoryLimit = 192 << 20
	memoryBudget     = 256 << 20
	// stageOverhead covers what does not grow with the image: the
	// 640-720 px working copy and the detector, the cropped second decode
	// (at most about 2x the portrait per axis), the portrait and chip JPEG.
	stageOverhead = 12 << 20
)

// stageCost is the bound charged for decoding h at 1/denom: the raster
// (twice while EXIF orientation copies it), the reduction sums of the
// streaming paths, the decoder's own buffers, and stageOverhead.
func stageCost(h header, denom int) int64 {
	sw, sh := scaledSize(h.w, h.h, denom)
	raster := 3 * int64(sw) * int64(sh)
	cost := raster + stageOverhead
	if h.orientation > 1 {
		cost += raster
	}
	px := int64(h.w) * int64(h.h)
	switch {
	case h.format == formatPNG:
		cost += 2*raster + 4*8*int64(h.w) // uint16 sums; rows of up to 8 bytes per pixel
	case turboAvailable:
		if h.buffered {
			cost += jpegCoefBytes(h, 128) // libjpeg: 64 int16 per block
		}
		cost += 64 * 4 * int64(h.w) // row buffers of a few iMCU rows
	default:
		// image/jpeg keeps the whole image (CMYK twice: planes, then
		// image.CMYK) and, for progressive files, 64 int32 per block;
		// the reduction sums come on top.
		cost += jpegCoefBytes(h, 64) + 2*raster
		if h.components == 4 {
			cost += 4 * px
		}
		if h.progressive {
			cost += jpegCoefBytes(h, 256)
		}
	}
	return cost
}

// jpegCoefBytes is the size of a whole-image buffer of perBlock bytes per
// 8x8 block of every component, padded to whole MCUs as decoders allocate.
func jpegCoefBytes(h header, perBlock int64) int64 {
	hmax, vmax := 1, 1
	for c := 0; c < h.components; c++ {
		hmax, vmax = max(hmax, h.sampling[c][0]), max(vmax, h.sampling[c][1])
	}
	mcuX := int64((h.w + 8*hmax - 1) / (8 * hmax))
	mcuY := int64((h.h + 8*vmax - 1) / (8 * vmax))
	var blocks int64
	for c := 0; c < h.components; c++ {
		blocks += mcuX * int64(h.sampling[c][0]) * mcuY * int64(h.sampling[c][1])
	}
	return blocks * perBlock
}

// firstDenom is the scale of the stage's first decode: the largest
// reduction that keeps the long side at least decodeLongSide.
func firstDenom(h header) int {
	long := max(h.w, h.h)
	for _, d := range []int{8, 4, 2} {
		if (long+d-1)/d >= decodeLongSide {
			return d
		}
	}
	return 1
}

// logoDenom is the reduction for a logo: the 354x118 box needs no more
// than four times its pixels, even after a wide border is trimmed.
func logoDenom(h header) int {
	for _, d := range []int{8, 4, 2} {
		if w, ht := scaledSize(h.w, h.h, d); w >= 4*LogoBoxW && ht >= 4*LogoBoxH {
			return d
		}
	}
	return 1
}

// checkCost refuses an image whose decode at 1/denom would cost more than a
// photo may use, with what to do about it.
func checkCost(h header, denom int) *HeaderError {
	need := stageCost(h, denom)
	if need <= photoMemoryLimit {
		return nil
	}
	what := "image"
	if h.buffered {
		what = "progressive JPEG"
	}
	return &HeaderError{Code: CodeTooLarge, Message: fmt.Sprintf(
		"decoding this %dx%d %s would take about %d MB of memory, more than the %d MB one image may use; "+
			"save it as a standard (baseline) JPEG, or with fewer pixels",
		h.w, h.h, what, need>>20, photoMemoryLimit>>20)}
}

// budget is a weighted semaphore over bytes, first come first served so
// that a large photo is not starved by a stream of small ones.
type budget struct {
	mu      sync.Mutex
	free    int64
	waiting []budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

var stageBudget = &budget{free: memoryBudget}

// acquire blocks until n bytes are free and takes them. n must not exceed
// the budget's size.
func (b *budget) acquire(n int64) {
	b.mu.Lock()
	if len(b.waiting) == 0 && n <= b.free {
		b.free -= n
		b.mu.Unlock()
		return
	}
	w := budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiting = append(b.waiting, w)
	b.mu.Unlock()
	<-w.ready
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
	for len(b.waiting) > 0 && b.waiting[0].n <= b.free {
		w := b.waiting[0]
		b.waiting = b.waiting[1:]
		b.free -= w.n
		close(w.ready)
	}
}

// tooLargeError is a decoder that ran out of the memory a photo may use
// (libjpeg's own limit, behind the estimate of stageCost).
type tooLargeError struct{}

func (*tooLargeError) Error() string {
	return fmt.Sprintf("decoding needs more than the %d MB a photo may use", photoMemoryLimit>>20)
}
