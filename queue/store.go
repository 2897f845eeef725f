// Package queue keeps orders durable: their state machine, the leases that
// workers hold on them, the audit trail, the outbox of upstream notices, and
// the card numbers handed out. Everything lives in one SQLite file (WAL).
package queue

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrations embed.FS

var (
	ErrNotFound       = errors.New("order not found")
	ErrConflict       = errors.New("an order with this id exists with a different body")
	ErrNothingToClaim = errors.New("no order to claim")
	ErrLeaseLost      = errors.New("lease lost: the order changed state or another worker took it")
	ErrState          = errors.New("the order is not in a state that allows this")
)

// Store is the station's database. Write transactions (tx) take turns on
// txMu so that SQLite never has to arbitrate them; single-statement writes
// (outbox marks, users, sessions, audit, tokens) go straight to the write
// pool and wait for SQLite's lock within the busy timeout. Reads use a pool.
type Store struct {
	w, r  *sql.DB
	now   func() time.Time
	path  string
	txMu  sync.Mutex
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// Option configures a Store.
type Option func(*Store)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Open opens (creating if needed) the database at path and migrates it.
func Open(path string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, path: path, stmts: map[string]*sql.Stmt{}}
	for _, o := range opts {
		o(s)
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
	if s.w, err = sql.Open("sqlite3", dsn); err != nil {
		return nil, err
	}
	// Write transactions take turns on txMu; the second connection is for
	// preparing a statement while a transaction holds the first.
	s.w.SetMaxOpenConns(2)
	if s.r, err = sql.Open("sqlite3", dsn); err != nil {
		s.w.Close()
		return nil, err
	}
	s.r.SetMaxOpenConns(8)
	if err := s.migrate(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.mu.Unlock()
	return errors.Join(s.w.Close(), s.r.Close())
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		err := s.tx(ctx, func(tx *txn) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil || n > 0 {
				return err
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			// A migration holds several statements: run it unprepared.
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, s.now().UnixMilli())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// tx runs fn in one write transaction.
func (s *Store) tx(ctx context.Context, fn func(*txn) error) error {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&txn{tx: tx, s: s}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// txn is a write transaction whose statements are prepared once per Store:
// SQLite spends more time parsing the claim query than running it.
type txn struct {
	tx *sql.Tx
	s  *Store
}

func (t *txn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	t.s.mu.Lock()
	st, ok := t.s.stmts[query]
	t.s.mu.Unlock()
	if !ok {
		var err error
		if st, err = t.s.w.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		t.s.mu.Lock()
		if prev, raced := t.s.stmts[query]; raced {
			st.Close()
			st = prev
		} else {
			t.s.stmts[query] = st
		}
		t.s.mu.Unlock()
	}
	return t.tx.StmtContext(ctx, st), nil
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext is sql.Tx's, with a prepared statement; a preparation
// error comes back from Scan, as database/sql does.
func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) scanner {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Backup writes a consistent copy of the live database to dest with
// SQLite's online backup, a chunk of pages at a time, telling progress how
// far it got. A write by the daemon restarts an online backup; after a few
// restarts the rest is copied in one step, which holds a read snapshot.
func (s *Store) Backup(ctx context.Context, dest string, progress func(done, total int)) (err error) {
	// The copy holds photos and personnummer: only the owner may read it.
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

// querier is the read pool or a write transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// collect runs a query and scans each row it returns with scan.
func collect[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }
