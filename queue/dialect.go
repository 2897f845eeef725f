package queue

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// dialect is what differs between the two databases behind the one store;
// every query is written once, with ? placeholders, and passes through it.
type dialect struct {
	name string
	// serialWrites: write transactions take turns in Go (SQLite has one
	// writer; letting it arbitrate means busy waits).
	serialWrites bool
	// prepare: keep statements prepared per store. SQLite spends more time
	// parsing the claim query than running it; pgx caches its prepared
	// statements per connection by itself.
	prepare bool
	// skipLocked ends a SELECT that picks a row to take: in PostgreSQL a
	// row another station is taking is skipped, not waited for. SQLite has
	// one writer at a time, so nothing is ever locked under it.
	skipLocked string
	// forUpdate ends a SELECT whose answer a write transaction acts on.
	forUpdate string
	// ilike matches expr against a LIKE pattern parameter, ignoring case
	// in any script (Å and å alike, not only ASCII).
	ilike func(expr string) string
	// nextCardSeq returns the next card number sequence value.
	nextCardSeq string
	// numbered: placeholders are $1, $2, … instead of ?.
	numbered bool
	rebound  sync.Map // query → query with numbered placeholders
	// unique reports a unique-constraint violation.
	unique func(error) bool
	// busy reports that the database was locked by another connection.
	busy func(error) bool
	// lockMigrations makes sure one process at a time migrates.
	lockMigrations func(ctx context.Context, conn *sql.Conn) (unlock func(), err error)
}

// q rewrites a query for the dialect's placeholders.
func (d *dialect) q(query string) string {
	if !d.numbered {
		return query
	}
	if v, ok := d.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	d.rebound.Store(query, out)
	return out
}

func newSQLiteDialect() *dialect {
	return &dialect{
		name:         "sqlite",
		serialWrites: true,
		prepare:      true,
		ilike:        func(expr string) string { return "fold(coalesce(" + expr + ", '')) LIKE fold(?) ESCAPE '\\'" },
		nextCardSeq:  `UPDATE counters SET value = value + 1 WHERE name = 'card_number' RETURNING value`,
		unique: func(err error) bool {
			var se sqlite3.Error
			return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey || se.ExtendedCode == sqlite3.ErrConstraintUnique)
		},
		busy: func(err error) bool {
			var se sqlite3.Error
			return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
		},
		lockMigrations: func(context.Context, *sql.Conn) (func(), error) { return func() {}, nil },
	}
}

// migrationLockKey is the advisory lock stations take to migrate; any
// constant works as long as every station uses the same one.
const migrationLockKey = 0x1D06_0001

func newPostgresDialect() *dialect {
	return &dialect{
		name:        "postgres",
		skipLocked:  " FOR UPDATE SKIP LOCKED",
		forUpdate:   " FOR UPDATE",
		ilike:       func(expr string) string { return expr + " ILIKE ? ESCAPE '\\'" },
		nextCardSeq: `SELECT nextval('card_number_seq')`,
		numbered:    true,
		unique: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "23505"
		},
		busy: func(error) bool { return false },
		lockMigrations: func(ctx context.Context, conn *sql.Conn) (func(), error) {
			if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
				return nil, err
			}
			return func() { conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockKey) }, nil
		},
	}
}
