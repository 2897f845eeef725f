package queue_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
	"id06/queue/queuetest"
)

// What is SQLite's own: the online backup and the files' modes. Everything
// else the store does is in the conformance suite.

var (
	holder = queuetest.Holder
	submit = queuetest.Submit
)

func TestBackupWhileWriting(t *testing.T) {
	s := queuetest.Open(t)
	for i := 0; i < 200; i++ {
		submit(t, s, fmt.Sprintf("o%03d", i), false, holder(time.Now()))
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
			submit(t, s, fmt.Sprintf("w%05d", n), false, holder(time.Now()))
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
	raw, err := sql.Open("sqlite3", "file:"+dest+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var check string
	if err := raw.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity of the copy: %q %v", check, err)
	}
	cp, err := queue.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if o, err := cp.Get(context.Background(), "o199"); err != nil || o.State != order.Queued {
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
			s, err := queue.Open(path)
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
			s, err := queue.Open("sqlite:" + path)
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
