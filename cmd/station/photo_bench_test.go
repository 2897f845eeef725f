package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPhotoCropProcess times `station photo crop` as a whole process
// (start, decode, detect, check, crop, encode, exit) on the 12-megapixel
// files, against Debian's vipsthumbnail making a 300x380 thumbnail of the
// same file, and reports the ratio (below 1: the station is faster).
func BenchmarkPhotoCropProcess(b *testing.B) {
	vips, err := exec.LookPath("vipsthumbnail")
	if err != nil {
		b.Skip("vipsthumbnail not installed (apt-get install libvips-tools)")
	}
	bin := stationBinary(b)
	files, _ := filepath.Glob(filepath.Join(sharedDir(b), "testdata", "photos", "perf", "*.jpg"))
	if len(files) == 0 {
		b.Fatal("no perf photos")
	}
	for _, f := range files {
		b.Run(filepath.Base(f), func(b *testing.B) {
			dir := b.TempDir()
			timeIt := func(name string, args ...string) time.Duration {
				var total time.Duration
				for range b.N {
					start := time.Now()
					if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
						b.Fatalf("%s: %v\n%s", name, err, out)
					}
					total += time.Since(start)
				}
				return total / time.Duration(b.N)
			}
			station := timeIt(bin, "photo", "crop", f, "-o", filepath.Join(dir, "p.png"), "--chip-jpeg", filepath.Join(dir, "p.jpg"))
			thumb := timeIt(vips, f, "-s", "300x380", "-o", filepath.Join(dir, "v.jpg"))
			b.ReportMetric(float64(station.Microseconds())/1000, "station-ms")
			b.ReportMetric(float64(thumb.Microseconds())/1000, "vips-ms")
			b.ReportMetric(float64(station)/float64(thumb), "ratio")
		})
	}
}
