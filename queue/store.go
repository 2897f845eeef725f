// Package queue keeps orders durable: their state machine, the leases that
// stations' workers hold on them, the audit trail, the outbox of upstream
// notices, and the card numbers handed out. One store runs on either of two
// databases: a SQLite file (WAL) for a station on its own, or PostgreSQL for
// a fleet of stations sharing one queue; the SQL is written once and the
// few differences live in a dialect.
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
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

var (
	ErrNotFound       = errors.New("order not found")
	ErrConflict       = errors.New("an order with this id exists with a different body")
	ErrNothingToClaim = errors.New("no order to claim")
	ErrLeaseLost      = errors.New("lease lost: the order changed state or another worker took it")
	ErrState          = errors.New("the order is not in a state that allows this")
)

// Store is the station's database: one SQLite file for a station on its
// own, or one PostgreSQL database that a fleet of stations shares. Every
// write goes through tx; on SQLite write transactions take turns in Go so
// that SQLite never has to arbitrate writers, while PostgreSQL arbitrates
// them with row locks. Reads use a pool.
type Store struct {
	w, r     *sql.DB
	d        *dialect
	now      func() time.Time
	path     string // the SQLite file; "" on PostgreSQL
	url      string // the PostgreSQL URL; "" on SQLite
	station  string // this station's name: it owns the leases its workers take
	sole     bool   // no other station uses the database: every lease is this station's
	instance string // this process, to tell a restart from a second station of the same name
	txMu     sync.Mutex
	mu       sync.Mutex
	stmts    map[string]*sql.Stmt
}

// Option configures a Store.
type Option func(*Store)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithStation names the station that uses the store (default: the host
// name). Leases belong to a station: at start-up it takes back its own
// leases from its previous run and leaves other stations' live ones alone.
func WithStation(name string) Option { return func(s *Store) { s.station = name } }

// WithSoleStation says that no other station uses the database (a SQLite
// file under its data directory's lock), so every lease in it is this
// station's own: at start-up it takes back even those of a previous run
// under another name.
func WithSoleStation() Option { return func(s *Store) { s.sole = true } }

// Open opens (creating if needed) and migrates the database that dsn names:
// postgres://… (or postgresql://…) for PostgreSQL; sqlite:PATH or a plain
// PATH for a SQLite file.
func Open(dsn string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, stmts: map[string]*sql.Stmt{}, instance: uuid.NewString()}
	for _, o := range opts {
		o(s)
	}
	if s.station == "" {
		s.station, _ = os.Hostname()
	}
	var err error
	switch {
	case IsPostgres(dsn):
		err = s.openPostgres(dsn)
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("database %q: use sqlite:PATH or postgres://USER@HOST/DATABASE", dsn)
	default:
		err = s.openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate %s: %w", s.Where(), err)
	}
	return s, nil
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Where names the database for messages: the SQLite file, or the
// PostgreSQL host and database without the password.
func (s *Store) Where() string {
	if s.path != "" {
		return s.path
	}
	u, err := url.Parse(s.url)
	if err != nil {
		return "postgres"
	}
	return "postgres://" + u.Host + u.Path
}

// Driver is "sqlite" or "postgres".
func (s *Store) Driver() string { return s.d.name }

// Station is the name of the station using the store.
func (s *Store) Station() string { return s.station }

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.mu.Unlock()
	if s.r == s.w {
		return s.w.Close()
	}
	return errors.Join(s.w.Close(), s.r.Close())
}

// migrate applies the dialect's migrations not yet applied, each in its own
// transaction, with the dialect's lock held so that stations starting at
// once migrate one after the other.
func (s *Store) migrate(ctx context.Context) error {
	if s.d.serialWrites {
		s.txMu.Lock()
		defer s.txMu.Unlock()
	}
	conn, err := s.w.Conn(ctx)
	// A new SQLite file turns to WAL on each first connection; another
	// process (or store) doing the same at that moment makes SQLite answer
	// busy at once, without its busy timeout.
	for tries := 0; err != nil && s.d.busy(err) && tries < 200; tries++ {
		time.Sleep(25 * time.Millisecond)
		conn, err = s.w.Conn(ctx)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	unlock, err := s.d.lockMigrations(ctx, conn)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer unlock()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	names, err := migrationNames(s.d.name)
	if err != nil {
		return err
	}
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.d.q(`SELECT count(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
			tx.Rollback()
			return err
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		// A migration holds several statements: run it without arguments.
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, s.now().UnixMilli()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// migrationNames lists a dialect's migration files in the order they apply.
func migrationNames(dialect string) ([]string, error) {
	names, err := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
	sort.Strings(names)
	return names, err
}

// Migrations lists the schema versions applied to the database, oldest
// first.
func (s *Store) Migrations(ctx context.Context) ([]string, error) {
	rows, err := s.query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// tx runs fn in one write transaction: the one way anything is written.
func (s *Store) tx(ctx context.Context, fn func(*txn) error) error {
	if s.d.serialWrites {
		s.txMu.Lock()
		defer s.txMu.Unlock()
	}
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

// exec runs one write statement in its own transaction.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.tx(ctx, func(tx *txn) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// query and queryRow read outside any write transaction.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.r.QueryContext(ctx, s.d.q(query), args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.r.QueryRowContext(ctx, s.d.q(query), args...)
}

// txn is a write transaction; on SQLite its statements are prepared once
// per Store.
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
	if !t.s.d.prepare {
		return t.tx.ExecContext(ctx, t.s.d.q(query), args...)
	}
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !t.s.d.prepare {
		return t.tx.QueryContext(ctx, t.s.d.q(query), args...)
	}
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext is sql.Tx's, with a prepared statement; a preparation
// error comes back from Scan, as database/sql does.
func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) scanner {
	if !t.s.d.prepare {
		return t.tx.QueryRowContext(ctx, t.s.d.q(query), args...)
	}
	st, err := t.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// querier is the store's read pool or a write transaction; both write the
// query in the dialect's placeholders.
type querier interface {
	query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (t *txn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.QueryContext(ctx, query, args...)
}

// collect runs a query and scans each row it returns with scan.
func collect[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.query(ctx, query, args...)
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
