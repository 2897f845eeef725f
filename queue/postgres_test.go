package queue_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
	"id06/queue/pgtest"
)

// What is PostgreSQL's own: the backup is pg_dump's, and pg_restore brings
// it back into an empty database that a store then opens as it was.
func TestPostgresBackupRestores(t *testing.T) {
	s, err := queue.Open(pgtest.URL(t), queue.WithStation("st-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, id := range []string{"o1", "o2"} {
		submit(t, s, id, false, holder(time.Now()))
	}
	moves := map[order.State]order.State{order.Queued: order.Encoding}
	j, err := s.Claim(ctx, "w", time.Minute, moves)
	if err == nil {
		err = s.AllocateCard(ctx, j, "BB")
	}
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "station.dump")
	calls := 0
	if err := s.Backup(ctx, dest, func(done, total int) { calls++ }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 || calls == 0 {
		t.Fatalf("dump %v %v, %d progress calls; want a non-empty owner-only file", fi, err, calls)
	}
	if err := s.Backup(ctx, dest, nil); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	srv := pgtest.Shared(t)
	restored := pgtest.URL(t)
	u, _ := url.Parse(restored)
	name := strings.TrimPrefix(u.Path, "/")
	out, err := exec.Command(srv.Bin("pg_restore"), "-h", srv.Dir, "-p", strconv.Itoa(srv.Port), "-U", "postgres",
		"--no-owner", "-d", name, dest).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore: %v: %s", err, out)
	}
	cp, err := queue.Open(restored, queue.WithStation("st-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if o, err := cp.Get(ctx, "o2"); err != nil || o.State != order.Queued {
		t.Fatalf("restored order: %v %v", o, err)
	}
	// The card number sequence comes back where it was: no number reused.
	if j, err = cp.Claim(ctx, "w", time.Minute, moves); err != nil {
		t.Fatal(err)
	}
	second, _ := order.FormatCardNumber("BB", 2)
	if err := cp.AllocateCard(ctx, j, "BB"); err != nil || j.CardNumber != second {
		t.Fatalf("first card after restore: %s %v, want %s", j.CardNumber, err, second)
	}
}
