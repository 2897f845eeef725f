package imaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"id06/internal/integration"
)

func perfFiles(b *testing.B) []string {
	b.Helper()
	files, err := filepath.Glob(filepath.Join(photosDir(b), "perf", "*.jpg"))
	if err != nil || len(files) == 0 {
		integration.Missing(b, "no 12 MP photos in ../shared/testdata/photos/perf")
	}
	sort.Strings(files)
	return files
}

// BenchmarkCheckPhoto12MP is the whole photo stage (header, decode, detect,
// checks, crop, levels, chip JPEG) per 12-megapixel photo. Besides ns/op it
// reports the median and the heap high-water mark of one run (peak-heap-MB,
// from a separate instrumented run so that sampling does not skew timing).
func BenchmarkCheckPhoto12MP(b *testing.B) {
	for _, f := range perfFiles(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(filepath.Base(f), func(b *testing.B) {
			b.ReportAllocs()
			peak := peakHeap(func() { CheckPhoto(data) })
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if r := CheckPhoto(data); r.Portrait == nil {
					b.Fatalf("no portrait: %v", r.Reasons)
				}
				times = append(times, time.Since(t0))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// peakHeap runs fn once and returns the highest HeapInuse seen, sampled
// every 200µs, minus the heap in use before; GC runs first so that garbage
// from earlier work does not count.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := base
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			return peak - base
		case <-tick.C:
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
}

// BenchmarkCropVsVips runs Debian's vipsthumbnail on the same files as a
// whole process and reports its wall time as vips-ms, so the lead can put
// `station photo crop` (also a whole process) next to it.
func BenchmarkCropVsVips(b *testing.B) {
	vips, err := exec.LookPath("vipsthumbnail")
	if err != nil {
		integration.Missing(b, "vipsthumbnail not installed (apt install libvips-tools)")
	}
	for _, f := range perfFiles(b) {
		b.Run(filepath.Base(f), func(b *testing.B) {
			out := filepath.Join(b.TempDir(), "thumb.png")
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if msg, err := exec.Command(vips, f, "-s", "300x380", "-o", out).CombinedOutput(); err != nil {
					b.Fatalf("vipsthumbnail: %v: %s", err, msg)
				}
				times = append(times, time.Since(t0))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "vips-ms")
		})
	}
}

// BenchmarkCheckPhotoTypical is the stage on a typical upload (1350x1350).
func BenchmarkCheckPhotoTypical(b *testing.B) {
	data := readPhoto(b, "dev/pass_london_010_03.jpg")
	b.ReportAllocs()
	for b.Loop() {
		CheckPhoto(data)
	}
}

// BenchmarkCheckPhotoTypicalPNG is the same upload as a PNG (8-bit RGB),
// which goes through the streaming PNG decoder.
func BenchmarkCheckPhotoTypicalPNG(b *testing.B) {
	data := encodePNG(b, toRGBA(decodeAll(b, readPhoto(b, "dev/pass_london_010_03.jpg"))))
	b.ReportAllocs()
	for b.Loop() {
		CheckPhoto(data)
	}
}

// BenchmarkIntakeCheck is what intake pays per upload for CheckPhotoHeader
// (header, limits, structure walk to EOI or every PNG CRC to IEND), beside
// the header parse alone (the check before the structure walk) and, for
// JPEGs, a decode at 1/8 scale with libjpeg, the cheapest decode that would
// also see damaged entropy data.
func BenchmarkIntakeCheck(b *testing.B) {
	portrait := readPhoto(b, "dev/pass_london_010_03.jpg")
	inputs := []struct {
		name string
		data []byte
	}{
		{"portrait-jpeg", portrait},
		{"12mp-jpeg", readPhoto(b, "perf/perf_12mp_4000x3000_tiled_real.jpg")},
		{"portrait-png", encodePNG(b, toRGBA(decodeAll(b, portrait)))},
		{"50mp-png-16bit", pngBomb()},
	}
	for _, in := range inputs {
		b.Run(in.name+"/intake", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if err := CheckPhotoHeader(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/header-only", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if in.data[0] == 0xFF {
					parseJPEGHeader(in.data)
				} else {
					parsePNGHeader(in.data)
				}
			}
		})
		if in.data[0] == 0xFF && turboAvailable {
			h, _ := parseHeader(in.data)
			b.Run(in.name+"/libjpeg-1-8", func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				for b.Loop() {
					if _, err := decodeScaled(in.data, h, 8); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
