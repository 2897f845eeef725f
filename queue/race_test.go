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
	for i := range orders {
		submitted, _, err := s.Submit(ctx, queue.NewOrder{ID: fmt.Sprintf("o%05d", i), Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`),
			CardType: "id06", Express: i%10 == 0, Approvals: []queue.Approval{{Kind: "holder", Method: "bankid", At: time.Now()}}, Photo: []byte("p")}, "api")
		if err != nil || submitted.State != queue.Queued {
			t.Fatalf("submit: %v", err)
		}
	}
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envClaimer+"="+url, "QUEUE_TEST_STATION=st-"+string(rune('a'+i)))
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
	claimedBy := map[string][]string{}
	perStation := map[string]int{}
	for i := range outs {
		sc := bufio.NewScanner(&outs[i])
		for sc.Scan() {
			id, who, _ := strings.Cut(sc.Text(), " ")
			claimedBy[id] = append(claimedBy[id], who)
			perStation[strings.Split(who, "/")[0]]++
		}
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
	if err != nil || counts[queue.Ready] != orders {
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
	if perStation["st-a"] == 0 || perStation["st-b"] == 0 {
		t.Errorf("the two processes did not overlap: %v", perStation)
	}
}

// runClaimer is a station process of the race test: 8 workers claim and
// finish photo jobs until none is left, printing "ORDER STATION/WORKER"
// for each claim.
func runClaimer(url, station string) int {
	s, err := queue.Open(url, queue.WithStation(station))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	ctx := context.Background()
	moves := map[queue.State]queue.State{queue.Queued: queue.Imaging, queue.Imaging: queue.Imaging}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	failed := false
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				j, err := s.Claim(ctx, owner, time.Minute, moves)
				if errors.Is(err, queue.ErrNoJob) {
					return
				}
				if err == nil {
					mu.Lock()
					fmt.Fprintf(out, "%s %s/%s\n", j.ID, station, owner)
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
