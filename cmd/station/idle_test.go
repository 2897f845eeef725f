package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuTime is the CPU a process has used so far (user + system), read from
// /proc/PID/stat.
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name is in parentheses and may hold spaces: count fields
	// after the last ')'. utime and stime are fields 14 and 15 of stat(5).
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse %s: %v %v", b, err1, err2)
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// An idle station must sleep: after producing an order, the daemon has no
// work, and its CPU time over a few idle seconds stays within a small budget
// (a worker that keeps waking itself burns a whole core here).
func TestIdleDaemonSleeps(t *testing.T) {
	skipShort(t, "runs the real binary")
	d := startDaemon(t, t.TempDir())
	d.submit("idle-1", passPhotos(t)[0])
	d.produced("idle-1", 2*time.Minute)
	pid := d.cmd.Process.Pid
	time.Sleep(time.Second) // let the last webhook poll and log line settle
	const window = 4 * time.Second
	before, start := cpuTime(t, pid), time.Now()
	time.Sleep(window)
	used, wall := cpuTime(t, pid)-before, time.Since(start)
	t.Logf("idle CPU: %v over %v (%.1f%%)", used, wall.Round(time.Millisecond), 100*used.Seconds()/wall.Seconds())
	if budget := wall / 20; used > budget {
		t.Errorf("the idle station used %v of CPU in %v (budget %v, 5%%): something is spinning", used, wall.Round(time.Millisecond), budget)
	}
}
