package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Operator roles. An operator runs production, qa checks cards, an admin may
// do both.
const (
	RoleOperator = "operator"
	RoleQA       = "qa"
	RoleAdmin    = "admin"
)

// ErrUserExists is returned when adding a user whose name is taken.
var ErrUserExists = errors.New("a user with this name exists")

// User is an operator account.
type User struct {
	Name         string
	Role         string
	PasswordHash []byte
	CreatedAt    time.Time
}

// ValidRole reports whether role names a role.
func ValidRole(role string) bool {
	return role == RoleOperator || role == RoleQA || role == RoleAdmin
}

// AddUser creates an operator account; the caller hashes the password.
func (s *Store) AddUser(ctx context.Context, name, role string, passwordHash []byte) error {
	if !ValidRole(role) {
		return fmt.Errorf("role %q: use operator, qa or admin", role)
	}
	if strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t\r\n:") {
		return fmt.Errorf("user name %q: use one word without spaces or colons", name)
	}
	_, err := s.exec(ctx, `INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		name, role, passwordHash, ms(s.now()))
	if s.d.unique(err) {
		return ErrUserExists
	}
	return err
}

// SetPassword replaces a user's password hash and ends the user's sessions.
func (s *Store) SetPassword(ctx context.Context, name string, passwordHash []byte) error {
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE name = ?`, passwordHash, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_name = ?`, name)
		return err
	})
}

// User looks an account up by name; ErrNotFound when there is none.
func (s *Store) User(ctx context.Context, name string) (*User, error) {
	var u User
	var created sql.NullInt64
	err := s.queryRow(ctx, `SELECT name, role, password_hash, created_at FROM users WHERE name = ?`, name).
		Scan(&u.Name, &u.Role, &u.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

// AuditEntry is one station-level action: a login, a refused request, a
// pause. Actions on an order go to the order's events instead.
type AuditEntry struct {
	At     time.Time
	Actor  string
	Action string
	Detail string
}

// Audit records a station-level action.
func (s *Store) Audit(ctx context.Context, actor, action, detail string) error {
	_, err := s.exec(ctx, `INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)`,
		ms(s.now()), actor, action, detail)
	return err
}

// AuditLog returns the newest station-level actions first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	return collect(ctx, s, func(row scanner) (AuditEntry, error) {
		var e AuditEntry
		var at sql.NullInt64
		err := row.Scan(&at, &e.Actor, &e.Action, &e.Detail)
		e.At = fromMS(at)
		return e, err
	}, `SELECT at, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?`, limit)
}
