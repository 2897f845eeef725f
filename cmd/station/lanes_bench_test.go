package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// laneBaseline is the one-lane throughput (cards/h) of this run, against
// which BenchmarkLanes measures its scaling.
var laneBaseline float64

// BenchmarkLanes runs the real daemon with 1, 2, 4 and 8 simulated lanes at
// a real printer's pace (each APDU 15 ms, each print 2 s) and reports
// cards per hour, the scaling efficiency (cards/h with N lanes over N times
// one lane's) and the station's own CPU time per card: over the lanes'
// work (orders already past their photo check) and over the whole run
// (intake and photo checks included). The photo stage runs first with the
// station paused, so that the lanes' throughput is the lanes'.
func BenchmarkLanes(b *testing.B) {
	const perLane = 4
	photos := passPhotos(b)
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("lanes=%d", n), func(b *testing.B) {
			for range b.N {
				dir := b.TempDir()
				ops := opsToken(b, dir)
				var args []string
				for i := range n {
					args = append(args, "--lane", fmt.Sprintf("l%d=sim:apdu-delay=15ms,sim:print-time=2s", i))
				}
				d := startDaemon(b, dir, args...)
				pid := d.cmd.Process.Pid
				if code, body := d.ops(b, ops, http.MethodPost, "/v1/ops/pause", map[string]string{"message": "benchmark: photos first"}); code != http.StatusOK {
					b.Fatalf("pause: %d %s", code, body)
				}
				ids := make([]string, n*perLane)
				for i := range ids {
					ids[i] = fmt.Sprintf("bench-%02d", i)
					if code, body, err := d.do(http.MethodPost, "/v1/orders", orderJSON(b, ids[i], photos[i%len(photos)], false)); err != nil || code != http.StatusCreated {
						b.Fatalf("%d %s %v", code, body, err)
					}
				}
				d.waitCount(b, "ready", len(ids), 5*time.Minute)
				cpuBefore := cpuTime(b, pid)
				b.ResetTimer()
				start := time.Now()
				if code, body := d.ops(b, ops, http.MethodPost, "/v1/ops/resume", nil); code != http.StatusOK {
					b.Fatalf("resume: %d %s", code, body)
				}
				orders := d.waitFinal(ids, 10*time.Minute)
				elapsed := time.Since(start)
				b.StopTimer()
				cpuAfter := cpuTime(b, pid)
				produced, byLane := 0, map[string]int{}
				for _, o := range orders {
					if o.State == "produced" {
						produced++
						byLane[o.Lane]++
					}
				}
				if produced != len(ids) || len(byLane) != n {
					b.Fatalf("%d of %d produced, by lane %v", produced, len(ids), byLane)
				}
				perHour := float64(produced) / elapsed.Hours()
				if n == 1 {
					laneBaseline = perHour
				}
				b.ReportMetric(perHour, "cards/h")
				if laneBaseline > 0 {
					b.ReportMetric(perHour/(float64(n)*laneBaseline), "efficiency")
				}
				b.ReportMetric(float64(cpuAfter-cpuBefore)/float64(time.Millisecond)/float64(produced), "lane-cpu-ms/card")
				b.ReportMetric(float64(cpuAfter)/float64(time.Millisecond)/float64(produced), "total-cpu-ms/card")
				d.stop()
			}
		})
	}
}

// waitCount waits until n orders are in state.
func (d *daemon) waitCount(t testing.TB, state string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, b, err := d.do(http.MethodGet, "/v1/orders?limit=500&state="+state, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("list orders: %d %s %v", code, b, err)
		}
		var list struct{ Orders []json.RawMessage }
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Orders) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders %s after %s, want %d", len(list.Orders), state, timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
