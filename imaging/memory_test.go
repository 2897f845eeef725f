package imaging

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The worst inputs the upload limits allow (20 MB, 50 megapixels), made in
// the test: nothing this size is committed.
var worstInputs = []struct {
	name string
	make func() []byte
}{
	{"12mp-jpeg", func() []byte { return noisyJPEG(4000, 3000) }},
	{"50mp-png-16bit-rgba", func() []byte { return pngBomb() }},
	{"50mp-cmyk-jpeg", func() []byte {
		return uniformJPEG(jpegSpec{w: 7070, h: 7070, sampling: [][2]int{{1, 1}, {1, 1}, {1, 1}, {1, 1}}, level: 200})
	}},
	{"50mp-progressive-420", func() []byte { return progressiveBomb(2) }},
	{"50mp-progressive-444", func() []byte { return progressiveBomb(1) }},
	{"50mp-progressive-cmyk", func() []byte {
		return uniformJPEG(jpegSpec{w: 7070, h: 7070, sampling: [][2]int{{1, 1}, {1, 1}, {1, 1}, {1, 1}}, level: 200, progressive: true})
	}},
}

// pngBomb is the file of issue 12: 7070x7070, 16 bits per RGBA sample, one
// colour, 403 KB; image/png makes it a 400 MB image.NRGBA64. Generating it
// takes seconds, so it is made once per process.
var pngBomb = sync.OnceValue(func() []byte {
	return uniformPNG16(7070, 7070, [4]uint16{0xC000, 0xC000, 0xC000, 0xFFFF})
})

// progressiveBomb is a 50 MP progressive JPEG of one colour, luma sampled
// lumaSampling times the chroma in each direction: libjpeg must hold all
// of its coefficients (150 MB at 4:2:0, 300 MB at 4:4:4) in a few hundred
// kilobytes of file.
func progressiveBomb(lumaSampling int) []byte {
	return uniformJPEG(jpegSpec{w: 7070, h: 7070, sampling: [][2]int{{lumaSampling, lumaSampling}, {1, 1}, {1, 1}}, level: 90, progressive: true})
}

// noisyJPEG is a w x h baseline JPEG (4:2:0, quality 90) of a gradient
// with noise, about as costly to entropy-decode as a real photo.
func noisyJPEG(w, h int) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	r := rand.New(rand.NewPCG(3, 4))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Y[y*img.YStride+x] = uint8(64 + 128*x/w + r.IntN(24))
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = uint8(110+r.IntN(8)), uint8(140+r.IntN(8))
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// procStatusKB reads a "VmXXX:" line of /proc/self/status.
func procStatusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return -1
}

// rssGrowth runs fn and returns by how many bytes the resident set rose
// above its level before (VmHWM, reset through /proc/self/clear_refs, so C
// allocations count too), and the resident set a moment after fn, once
// the garbage collector and the scavenger had their usual chance. The
// heap is handed back first so that reused pages count as growth.
func rssGrowth(fn func()) (peak, after int64, err error) {
	runtime.GC()
	debug.FreeOSMemory() // measurement only: start from a returned heap
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0, 0, fmt.Errorf("resetting the peak RSS: %w", err)
	}
	base := procStatusKB("VmRSS")
	fn()
	peak = procStatusKB("VmHWM") - base
	runtime.GC()
	time.Sleep(2 * time.Second)
	after = procStatusKB("VmRSS") - base
	return peak << 10, after << 10, nil
}

// BenchmarkWorstInputs runs the stage on the worst legal inputs and
// reports, besides the time, the peak growth of the resident set
// (peak-rss-MB, C buffers included), of the Go heap (peak-heap-MB), the
// resident set 2 s later (rss-after-MB) and what the stage was charged
// (charged-MB); over the per-photo limit the photo is refused unread.
func BenchmarkWorstInputs(b *testing.B) {
	for _, in := range worstInputs {
		b.Run(in.name, func(b *testing.B) {
			data := in.make()
			var res *Result
			peak, after, err := rssGrowth(func() { res = CheckPhoto(data) })
			if err != nil {
				b.Fatal(err)
			}
			heap := peakHeap(func() { CheckPhoto(data) })
			h, _ := parseHeader(data)
			b.Logf("%d KB, %s %v", len(data)>>10, res.Verdict, reasonCodes(res))
			b.ReportAllocs()
			for b.Loop() {
				CheckPhoto(data)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(after)/(1<<20), "rss-after-MB")
			b.ReportMetric(float64(stageCost(h, firstDenom(h)))/(1<<20), "charged-MB")
		})
	}
}

func reasonCodes(r *Result) []string {
	var out []string
	for _, x := range r.Reasons {
		out = append(out, x.Code)
	}
	return out
}

// TestBombMemory runs decompression bombs in a fresh process each and
// bounds how far its resident set grows. Before the budget, the 16-bit PNG
// took it from 51 to 896 MB, two at once to 1.66 GB.
func TestBombMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 50-megapixel inputs")
	}
	dir := t.TempDir()
	files := map[string][]byte{"png": pngBomb(), "progressive": progressiveBomb(2)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		file  string
		n     int   // stages at once
		limit int64 // bytes the resident set may grow
	}{
		// Streamed, the PNG is charged 40 MB; the rest is garbage the
		// collector has not yet taken.
		{"png", 1, 96 << 20},
		{"png", 2, 160 << 20},
		// Charged 165 MB each, two of them cannot run together within the
		// 256 MB budget: the second waits.
		{"progressive", 2, memoryBudget + 32<<20},
	} {
		t.Run(fmt.Sprintf("%s x%d", tc.file, tc.n), func(t *testing.T) {
			if tc.file == "progressive" && !turboAvailable {
				t.Skip("image/jpeg would keep 4 bytes per coefficient: refused unread as image_too_large")
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestBombMemoryChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "IMAGING_BOMB="+filepath.Join(dir, tc.file), "IMAGING_BOMB_N="+strconv.Itoa(tc.n))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			var peak, after int64
			if _, err := fmt.Sscanf(string(out[bytes.Index(out, []byte("bomb:")):]), "bomb: peak=%d after=%d", &peak, &after); err != nil {
				t.Fatalf("child output: %s", out)
			}
			t.Logf("resident set grew by %d MB at the peak, %d MB 2 s later", peak>>20, after>>20)
			if peak > tc.limit {
				t.Errorf("resident set grew by %d MB, limit %d MB", peak>>20, tc.limit>>20)
			}
		})
	}
}

// TestBombMemoryChild is the measured process of TestBombMemory.
func TestBombMemoryChild(t *testing.T) {
	path := os.Getenv("IMAGING_BOMB")
	if path == "" {
		t.Skip("run by TestBombMemory")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("IMAGING_BOMB_N"))
	peak, after, err := rssGrowth(func() {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if res := CheckPhoto(data); res.Verdict == VerdictUnreadable {
					t.Errorf("bomb not decoded: %v", res.Reasons)
				}
			})
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("bomb: peak=%d after=%d\n", peak, after)
}
