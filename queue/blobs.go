package queue

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
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

// PutBlobs stores files for a job under its lease.
func (s *Store) PutBlobs(ctx context.Context, j *Job, blobs map[string][]byte) error {
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
