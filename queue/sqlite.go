package queue

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// sqliteDriver is go-sqlite3 with fold(), SQLite's lower() for every
// script: its own lower() and LIKE fold ASCII only, and the operator page
// searches Swedish names.
const sqliteDriver = "sqlite3_station"

func init() {
	sql.Register(sqliteDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		return c.RegisterFunc("fold", func(s string) string { return strings.ToLower(s) }, true)
	}})
}

func (s *Store) openSQLite(path string) error {
	s.d, s.path = newSQLiteDialect(), path
	if err := ownerOnly(path); err != nil {
		return err
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	// FULL: a commit is on disk before the API answers; an accepted order
	// survives a power cut, not just a crash.
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	q.Set("_cache_size", "-32000")
	dsn := "file:" + path + "?" + q.Encode()
	var err error
	if s.w, err = sql.Open(sqliteDriver, dsn); err != nil {
		return err
	}
	// Write transactions take turns on txMu; the second connection is for
	// preparing a statement while a transaction holds the first.
	s.w.SetMaxOpenConns(2)
	if s.r, err = sql.Open(sqliteDriver, dsn); err != nil {
		s.w.Close()
		return err
	}
	s.r.SetMaxOpenConns(8)
	return nil
}

// ownerOnly creates the database file readable by its owner alone (it holds
// photos and personnummer), and takes group and world access away from one
// made before. SQLite gives the -wal and -shm files the mode of the
// database file, so they follow.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// backupSQLite writes a consistent copy of the live database to dest with
// SQLite's online backup, a chunk of pages at a time, telling progress how
// far it got. A write by the daemon restarts an online backup; after a few
// restarts the rest is copied in one step, which holds a read snapshot.
func (s *Store) backupSQLite(ctx context.Context, dest string, progress func(done, total int)) error {
	dst, err := sql.Open("sqlite3", "file:"+dest)
	if err != nil {
		return err
	}
	defer dst.Close()
	dconn, err := dst.Conn(ctx)
	if err != nil {
		return err
	}
	defer dconn.Close()
	sconn, err := s.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer sconn.Close()
	return dconn.Raw(func(d any) error {
		return sconn.Raw(func(src any) error {
			b, err := d.(*sqlite3.SQLiteConn).Backup("main", src.(*sqlite3.SQLiteConn), "main")
			if err != nil {
				return err
			}
			defer b.Close()
			const chunk, maxRestarts = 256, 3
			restarts, lastRemaining := 0, -1
			for {
				if err := ctx.Err(); err != nil {
					return err
				}
				pages := chunk
				if restarts >= maxRestarts {
					pages = -1
				}
				done, err := b.Step(pages)
				if err != nil {
					return err
				}
				total, remaining := b.PageCount(), b.Remaining()
				if progress != nil {
					progress(total-remaining, total)
				}
				if done {
					return b.Finish()
				}
				if lastRemaining >= 0 && remaining > lastRemaining {
					restarts++
				}
				lastRemaining = remaining
			}
		})
	})
}
