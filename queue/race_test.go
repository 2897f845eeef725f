package queue_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
	"id06/queue/pgtest"
)

// envClaimer makes the test binary a claiming station process (see
// runClaimer): its value is the database URL.
const envClaimer = "QUEUE_TEST_CLAIMER_DB"

// Two station processes with 8 workers each claim from one PostgreSQL
// queue at once: no order is claimed twice and none is left behind.
func TestPostgresTwoProcessesClaimEachOrderOnce(t *testing.T) {
	url := pgtest.URL(t)
	s, err := queue.Open(url, queue.WithStation("seed"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const orders = 1500
	seed(t, s, orders)
	claimedBy := map[string][]string{}
	perStation := map[string]int{}
	for _, c := range runClaimers(t, url, 2, 8) {
		claimedBy[c.order] = append(claimedBy[c.order], c.by)
		perStation[strings.Split(c.by, "/")[0]]++
	}
	if len(claimedBy) != orders {
		t.Errorf("%d of %d orders claimed", len(claimedBy), orders)
	}
	for id, who := range claimedBy {
		if len(who) != 1 {
			t.Errorf("%s claimed %d times: %v", id, len(who), who)
		}
	}
	counts, err := s.CountByState(ctx)
	if err != nil || counts[order.Ready] != orders {
		t.Errorf("states after the run: %v (%v); want all %d ready", counts, err, orders)
	}
	var twice int
	list, _ := s.List(ctx, queue.Filter{Limit: 500})
	for len(list) > 0 {
		for _, o := range list {
			if o.Attempt != 1 {
				twice++
			}
		}
		list, _ = s.List(ctx, queue.Filter{After: list[len(list)-1].ID, Limit: 500})
	}
	if twice > 0 {
		t.Errorf("%d orders were claimed more than once by the database's own count", twice)
	}
	t.Logf("claims per station: %v", perStation)
	if perStation["st-0"] == 0 || perStation["st-1"] == 0 {
		t.Errorf("the two processes did not overlap: %v", perStation)
	}
}

// seed queues n approved orders, every tenth express, from 8 goroutines.
func seed(t testing.TB, s *queue.Store, n int) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				o, _, err := s.Submit(context.Background(), queue.NewOrder{ID: fmt.Sprintf("o%07d", i), Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`),
					CardType: "id06", Express: i%10 == 0, Approvals: []order.Approval{{Kind: "holder", Method: "bankid", At: time.Now()}}, Photo: []byte("p")}, "api")
				if err != nil || o.State != order.Queued {
					t.Errorf("submit: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// claim is one line of a claimer process's output.
type claim struct {
	order, by string
	took      time.Duration
}

// runClaimers runs station processes (the test binary again, in
// runClaimer) with workers each on the queue at url until it is empty.
func runClaimers(t testing.TB, url string, stations, workers int) []claim {
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, stations)
	for i := range stations {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envClaimer+"="+url, fmt.Sprintf("QUEUE_TEST_STATION=st-%d", i), fmt.Sprintf("QUEUE_TEST_WORKERS=%d", workers))
		cmd.Stdout = &outs[i]
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Wait(); err != nil {
				t.Errorf("claimer %d: %v: %s", i, err, stderr.String())
			}
		}()
	}
	wg.Wait()
	var out []claim
	for i := range outs {
		sc := bufio.NewScanner(&outs[i])
		for sc.Scan() {
			var c claim
			var us int64
			if _, err := fmt.Sscan(sc.Text(), &c.order, &c.by, &us); err != nil {
				t.Fatalf("claimer output %q: %v", sc.Text(), err)
			}
			c.took = time.Duration(us) * time.Microsecond
			out = append(out, c)
		}
	}
	return out
}

// runClaimer is a station process of the race test and the fleet
// benchmark: workers (8 unless QUEUE_TEST_WORKERS says) claim and finish
// photo jobs until none is left, printing "ORDER STATION/WORKER
// MICROSECONDS" for each claim, the time the claim took.
func runClaimer(url, station string) int {
	workers := 8
	fmt.Sscan(os.Getenv("QUEUE_TEST_WORKERS"), &workers)
	s, err := queue.Open(url, queue.WithStation(station))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	ctx := context.Background()
	moves := map[order.State]order.State{order.Queued: order.Imaging, order.Imaging: order.Imaging}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	failed := false
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				start := time.Now()
				j, err := s.Claim(ctx, owner, time.Minute, moves)
				took := time.Since(start)
				if errors.Is(err, queue.ErrNothingToClaim) {
					return
				}
				if err == nil {
					mu.Lock()
					fmt.Fprintf(out, "%s %s/%s %d\n", j.ID, station, owner, took.Microseconds())
					mu.Unlock()
					err = s.PhotoPassed(ctx, j, nil, "ok")
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					mu.Lock()
					failed = true
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed {
		return 1
	}
	return 0
}
