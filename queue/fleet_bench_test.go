package queue_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"id06/queue"
	"id06/queue/pgtest"
)

// BenchmarkFleet measures a queue shared by station processes: claim +
// complete cycles per second across 1, 2 and 4 processes on one
// PostgreSQL (and one on SQLite, its only set-up), with the claim's p50 and
// p99 latency under that load. Each process runs 4 workers, about what a
// station's photo and device workers make. Run with a fixed count, e.g.
// -benchtime=4000x.
func BenchmarkFleet(b *testing.B) {
	for _, p := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("postgres/stations=%d", p), func(b *testing.B) { benchFleet(b, pgtest.URL(b), p) })
	}
	b.Run("sqlite/stations=1", func(b *testing.B) { benchFleet(b, sqliteDB(b), 1) })
}

func benchFleet(b *testing.B, url string, stations int) {
	s, err := queue.Open(url, queue.WithStation("seed"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	seed(b, s, b.N)
	b.ResetTimer()
	claims := runClaimers(b, url, stations, 4)
	b.StopTimer()
	if len(claims) != b.N {
		b.Fatalf("%d claims for %d orders", len(claims), b.N)
	}
	took := make([]time.Duration, len(claims))
	for i, c := range claims {
		took[i] = c.took
	}
	slices.Sort(took)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-claim-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-claim-ms")
}

// BenchmarkIntakeConcurrent stores orders (300 KB photo each) from 8
// goroutines at once, as several API requests or stations do.
func BenchmarkIntakeConcurrent(b *testing.B) {
	for _, db := range []struct {
		name  string
		newDB func(testing.TB) string
	}{{"postgres", pgtest.URL}, {"sqlite", sqliteDB}} {
		b.Run(db.name, func(b *testing.B) {
			s, err := queue.Open(db.newDB(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			photo := make([]byte, 300<<10)
			rand.Read(photo) // as incompressible as a JPEG
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < b.N; i += 8 {
						if _, _, err := s.Submit(context.Background(), queue.NewOrder{ID: fmt.Sprintf("o%07d", i), Supplier: "sup", BodyHash: "h",
							Doc: []byte(`{}`), CardType: "id06", Photo: photo}, "api"); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

// BenchmarkPgbenchSimpleUpdate is the reference: the commit rate of this
// machine's PostgreSQL (fsync on) in pgbench's simple-update test with 4
// clients, for 10 seconds. A queue shared by stations cannot commit faster.
func BenchmarkPgbenchSimpleUpdate(b *testing.B) {
	srv := pgtest.Shared(b)
	name := "pgbench"
	if err := srv.CreateDatabase(name); err != nil {
		b.Fatal(err)
	}
	conn := []string{"-h", srv.Dir, "-p", strconv.Itoa(srv.Port), "-U", "postgres"}
	if out, err := exec.Command(srv.Bin("pgbench"), append(append([]string{"-i", "-q", "-s", "4"}, conn...), name)...).CombinedOutput(); err != nil {
		b.Fatalf("pgbench -i: %v: %s", err, out)
	}
	b.ResetTimer()
	var tps float64
	for range b.N {
		out, err := exec.Command(srv.Bin("pgbench"), append(append([]string{"-N", "-c", "4", "-j", "2", "-T", "10"}, conn...), name)...).CombinedOutput()
		if err != nil {
			b.Fatalf("pgbench -N: %v: %s", err, out)
		}
		m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			b.Fatalf("pgbench said: %s", out)
		}
		tps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	b.ReportMetric(tps, "tps")
}
