package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
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

// The database holds photos and personnummer: its files are the owner's
// alone however the directory came to be and whatever the umask.
func TestDatabaseFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, path string)
	}{
		{"new directory", func(*testing.T, string) {}},
		{"directory open to all", func(t *testing.T, path string) { os.Chmod(filepath.Dir(path), 0o777) }},
		{"files made readable by an older version", func(t *testing.T, path string) {
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			submit(t, s, "o0", false, nil)
			s.Close()
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.WriteFile(p, nil, 0o644) // no-op when it exists
				os.Chmod(p, 0o644)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data", "station.db")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.prep(t, path)
			s, err := Open("sqlite:" + path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			submit(t, s, "o1", false, nil) // writes the WAL and its index
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want -rw-------", filepath.Base(p), fi.Mode().Perm())
				}
			}
		})
	}
}

// Every migration exists for both databases, so neither falls behind.
func TestMigrationsForEveryDialect(t *testing.T) {
	var versions [2][]string
	for i, d := range []string{"sqlite", "postgres"} {
		names, err := migrationNames(d)
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: %v %v", d, names, err)
		}
		for _, n := range names {
			versions[i] = append(versions[i], filepath.Base(n))
		}
	}
	if !slices.Equal(versions[0], versions[1]) {
		t.Fatalf("sqlite migrations %v, postgres %v: add the missing one to the other", versions[0], versions[1])
	}
}

func TestPlaceholdersNumberedForPostgres(t *testing.T) {
	d := newPostgresDialect()
	if got := d.q(`UPDATE t SET a = ?, b = ? WHERE c IN (?, ?)`); got != `UPDATE t SET a = $1, b = $2 WHERE c IN ($3, $4)` {
		t.Fatal(got)
	}
	if got := newSQLiteDialect().q(`SELECT ?`); got != `SELECT ?` {
		t.Fatal(got)
	}
}

// One rule says which states may still be cancelled and which are at the
// devices; the two never overlap and the final states are in neither.
func TestCancellableAndDeviceStates(t *testing.T) {
	for _, st := range States {
		c, d := Cancellable(st), InDevice(st)
		if c && d {
			t.Errorf("%s is both cancellable and in the device", st)
		}
		final := st == Produced || st == Shipped || st == Failed || st == Cancelled
		if final && (c || d) {
			t.Errorf("final state %s offers cancel %v or stop %v", st, c, d)
		}
	}
	if !Cancellable(Ready) || Cancellable(Encoding) || !InDevice(Encoding) || !InDevice(Printing) {
		t.Error("ready must be cancellable; encoding and printing are at the devices")
	}
}
