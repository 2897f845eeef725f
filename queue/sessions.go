package queue

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ErrSessionExpired is returned for a session that existed but ran out.
var ErrSessionExpired = errors.New("session expired")

// Session is a logged-in operator.
type Session struct {
	User      string
	Role      string
	CSRF      string // the token every form of this session must carry
	ExpiresAt time.Time
}

// CreateSession stores a session under the hash of its cookie value, so a
// copy of the database cannot be used to log in. Expired sessions are swept
// on the way.
func (s *Store) CreateSession(ctx context.Context, cookie, user, csrf string, ttl time.Duration) (*Session, error) {
	var sess *Session
	err := s.tx(ctx, func(tx *txn) error {
		now := s.now()
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, ms(now)); err != nil {
			return err
		}
		var role string
		if err := tx.QueryRowContext(ctx, `SELECT role FROM users WHERE name = ?`, user).Scan(&role); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		exp := now.Add(ttl)
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, user_name, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			hashToken(cookie), user, csrf, ms(now), ms(exp)); err != nil {
			return err
		}
		sess = &Session{User: user, Role: role, CSRF: csrf, ExpiresAt: exp.UTC()}
		return nil
	})
	return sess, err
}

// LookupSession finds the session of a cookie value: ErrNotFound when there
// is none, ErrSessionExpired when it ran out.
func (s *Store) LookupSession(ctx context.Context, cookie string) (*Session, error) {
	var sess Session
	var exp sql.NullInt64
	err := s.queryRow(ctx, `SELECT s.user_name, u.role, s.csrf, s.expires_at FROM sessions s
		JOIN users u ON u.name = s.user_name WHERE s.hash = ?`, hashToken(cookie)).Scan(&sess.User, &sess.Role, &sess.CSRF, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	sess.ExpiresAt = fromMS(exp)
	if !s.now().Before(sess.ExpiresAt) {
		return nil, ErrSessionExpired
	}
	return &sess, nil
}

// DeleteSession ends a session (log out).
func (s *Store) DeleteSession(ctx context.Context, cookie string) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE hash = ?`, hashToken(cookie))
	return err
}
