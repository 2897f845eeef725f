package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t testing.TB) (*Store, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	s, err := Open(filepath.Join(t.TempDir(), "station.db"), WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

func holder(at time.Time) []Approval { return []Approval{{Kind: "holder", Method: "bankid", At: at}} }

func submit(t testing.TB, s *Store, id string, express bool, approvals []Approval) *Order {
	t.Helper()
	o, _, err := s.Submit(context.Background(), NewOrder{ID: id, Supplier: "sup", BodyHash: "h-" + id, Doc: []byte(`{}`),
		CardType: "id06", Express: express, Approvals: approvals, Photo: []byte("jpeg")}, "api")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

var photoMoves = map[State]State{Queued: Imaging, Imaging: Imaging}

func TestCardNumberFormat(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		seq    int64
		want   string
		err    bool
	}{
		{"BB", 1, "BB-0000-000018", false},
		{"NX", 123456789, "NX-1234-567897", false},
		{"bb", 1, "", true},
		{"BB", 0, "", true},
		{"BB", 1_000_000_000, "", true},
	} {
		got, err := FormatCardNumber(tc.prefix, tc.seq)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("FormatCardNumber(%q, %d) = %q, %v; want %q", tc.prefix, tc.seq, got, err, tc.want)
		}
		if !tc.err && !ValidCardNumber(got) {
			t.Errorf("%s does not validate", got)
		}
	}
	for _, bad := range []string{"BB-0000-000019", "BB-0000-00001", "B1-0000-000018", "BB00000000018"} {
		if ValidCardNumber(bad) {
			t.Errorf("%s validated", bad)
		}
	}
}

func TestBackupWhileWriting(t *testing.T) {
	s, c := open(t)
	for i := 0; i < 200; i++ {
		submit(t, s, fmt.Sprintf("o%03d", i), false, holder(c.now()))
	}
	// Orders keep arriving while the copy is made.
	stop := make(chan struct{})
	wrote := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				wrote <- n
				return
			default:
			}
			submit(t, s, fmt.Sprintf("w%05d", n), false, holder(c.now()))
			n++
		}
	}()
	dest := filepath.Join(t.TempDir(), "copy.db")
	var calls, lastDone, lastTotal int
	err := s.Backup(context.Background(), dest, func(done, total int) { calls, lastDone, lastTotal = calls+1, done, total })
	close(stop)
	<-wrote
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v; personal data must be owner-only", fi.Mode(), err)
	}
	if calls == 0 || lastDone != lastTotal || lastTotal == 0 {
		t.Fatalf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	cp, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	var check string
	if err := cp.r.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity of the copy: %q %v", check, err)
	}
	if o, err := cp.Get(context.Background(), "o199"); err != nil || o.State != Queued {
		t.Fatalf("backup copy lacks an order: %v", err)
	}
	if err := s.Backup(context.Background(), dest, nil); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
}
