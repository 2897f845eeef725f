package queue

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	// The pgx driver under database/sql, so both databases share one store.
	_ "github.com/jackc/pgx/v5/stdlib"
)

func (s *Store) openPostgres(url string) error {
	s.d, s.url = newPostgresDialect(), url
	db, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	// Enough for the photo workers, the device worker, the deliverer and
	// the API at once; PostgreSQL's own limit is shared by the fleet.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	s.w, s.r = db, db
	return nil
}

// Backup writes a consistent copy of the live database to dest, created
// readable by its owner only (it holds photos and personnummer), telling
// progress how far it got. On SQLite it is an online backup into a SQLite
// file; on PostgreSQL it is pg_dump's custom format (restore it with
// pg_restore), one snapshot of the whole database.
func (s *Store) Backup(ctx context.Context, dest string, progress func(done, total int)) (err error) {
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(dest) // ours, and only half written
		}
	}()
	if s.path != "" {
		return s.backupSQLite(ctx, dest, progress)
	}
	dump, err := PostgresTool("pg_dump")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, dump, "--format=custom", "--file="+dest, "--dbname="+s.url)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_dump: %w: %s", err, out)
	}
	if progress != nil {
		progress(1, 1)
	}
	return nil
}

// PostgresTool finds one of PostgreSQL's programs: on the PATH, else in
// Debian's /usr/lib/postgresql/VERSION/bin (the newest version installed),
// where the postgresql packages put those not linked onto the PATH.
func PostgresTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(found) == 0 {
		return "", fmt.Errorf("%s not found: install Debian's postgresql package", name)
	}
	sort.Slice(found, func(i, j int) bool { return pgVersion(found[i]) < pgVersion(found[j]) })
	return found[len(found)-1], nil
}

// pgVersion is the major version in a /usr/lib/postgresql/VERSION/bin path.
func pgVersion(p string) int {
	var v int
	fmt.Sscanf(filepath.Base(filepath.Dir(filepath.Dir(p))), "%d", &v)
	return v
}
