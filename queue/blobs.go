package queue

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

func putBlob(ctx context.Context, tx *txn, id, kind string, data []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO blobs (order_id, kind, data) VALUES (?, ?, ?)
		ON CONFLICT (order_id, kind) DO UPDATE SET data = excluded.data`, id, kind, data)
	return err
}

// Blob returns a stored file of an order: "photo", "logo", "portrait",
// "chip_jpeg", "face_pdf", "face_png". ErrNotFound when absent.
func (s *Store) Blob(ctx context.Context, id, kind string) ([]byte, error) {
	var data []byte
	err := s.queryRow(ctx, `SELECT data FROM blobs WHERE order_id = ? AND kind = ?`, id, kind).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return data, err
}

// PutBlobs stores files for a claimed order under its lease.
func (s *Store) PutBlobs(ctx context.Context, j *Claim, blobs map[string][]byte) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		for kind, data := range blobs {
			if err := putBlob(ctx, tx, j.ID, kind, data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Token is a supplier's API credential.
type Token struct {
	Supplier string
	Scopes   []string
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// AddToken stores a bearer token (hashed: the database never holds it).
// Tokens are long random strings, so a plain SHA-256 is enough to make a
// stolen database useless for calling the API.
func (s *Store) AddToken(ctx context.Context, supplier, token string, scopes []string) error {
	_, err := s.exec(ctx, `INSERT INTO tokens (hash, supplier, scopes, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (hash) DO UPDATE SET supplier = excluded.supplier, scopes = excluded.scopes, created_at = excluded.created_at`,
		hashToken(token), supplier, strings.Join(scopes, " "), ms(s.now()))
	return err
}

// TokenInfo describes a stored token without it: the station holds only
// the token's hash, and ID is the start of that hash.
type TokenInfo struct {
	ID        string
	Supplier  string
	Scopes    []string
	CreatedAt time.Time
}

// TokenIDLen is how much of the hash names a token; MinTokenIDLen is the
// shortest prefix Revoke takes, so a typo does not revoke a stranger.
const (
	TokenIDLen    = 12
	MinTokenIDLen = 8
)

// TokenID is the ID of a token as TokenInfo names it.
func TokenID(token string) string { return hashToken(token)[:TokenIDLen] }

// ErrAmbiguous is returned when a token ID prefix matches several tokens.
var ErrAmbiguous = errors.New("the id matches more than one token; give more of it")

// Tokens lists every token, by supplier.
func (s *Store) Tokens(ctx context.Context) ([]TokenInfo, error) {
	return s.tokens(ctx, s, "")
}

func (s *Store) tokens(ctx context.Context, q querier, prefix string) ([]TokenInfo, error) {
	return collect(ctx, q, func(row scanner) (TokenInfo, error) {
		var t TokenInfo
		var hash, scopes string
		var created sql.NullInt64
		if err := row.Scan(&hash, &t.Supplier, &scopes, &created); err != nil {
			return t, err
		}
		t.ID, t.Scopes, t.CreatedAt = hash[:TokenIDLen], strings.Fields(scopes), fromMS(created)
		return t, nil
	}, `SELECT hash, supplier, scopes, created_at FROM tokens WHERE hash LIKE ? ORDER BY supplier, created_at`, prefix+"%")
}

// RevokeToken deletes the one token whose ID starts with id: ErrNotFound
// when none does, ErrAmbiguous when several do.
func (s *Store) RevokeToken(ctx context.Context, id string) (*TokenInfo, error) {
	id = strings.ToLower(id)
	if len(id) < MinTokenIDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("token id %q: give at least %d hex digits of the id station token list shows", id, MinTokenIDLen)
	}
	var revoked *TokenInfo
	err := s.tx(ctx, func(tx *txn) error {
		found, err := s.tokens(ctx, tx, id)
		switch {
		case err != nil:
			return err
		case len(found) == 0:
			return ErrNotFound
		case len(found) > 1:
			return ErrAmbiguous
		}
		revoked = &found[0]
		_, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE hash LIKE ?`, id+"%")
		return err
	})
	return revoked, err
}

// LookupToken finds the supplier a bearer token belongs to.
func (s *Store) LookupToken(ctx context.Context, token string) (*Token, error) {
	var t Token
	var scopes string
	err := s.queryRow(ctx, `SELECT supplier, scopes FROM tokens WHERE hash = ?`, hashToken(token)).Scan(&t.Supplier, &scopes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	t.Scopes = strings.Fields(scopes)
	return &t, nil
}
