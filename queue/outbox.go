package queue

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Notice is an upstream notification waiting in the outbox.
type Notice struct {
	ID          int64
	EventID     string
	Supplier    string
	OrderID     string
	Type        string
	Payload     []byte // JSON: {"event_id","type","order_id","at", ...fields}
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Dead        bool
	Delivered   bool
}

// enqueueNotice writes a notice in the caller's transaction, so the supplier
// hears of a state change exactly when it commits.
func (s *Store) enqueueNotice(ctx context.Context, tx *txn, orderID, typ string, fields map[string]any) error {
	// The supplier knows the order by its own id.
	var supplier, supplierOrderID string
	if err := tx.QueryRowContext(ctx, `SELECT supplier, coalesce(supplier_order_id, id) FROM orders WHERE id = ?`, orderID).Scan(&supplier, &supplierOrderID); err != nil {
		return err
	}
	now := s.now()
	eventID := uuid.NewString()
	body := map[string]any{"event_id": eventID, "type": typ, "order_id": supplierOrderID, "at": now.UTC().Format(time.RFC3339Nano)}
	for k, v := range fields {
		body[k] = v
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (event_id, supplier, order_id, type, payload, created_at, next_attempt)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, eventID, supplier, orderID, typ, payload, ms(now), ms(now))
	return err
}

const noticeColumns = `id, event_id, supplier, order_id, type, payload, attempts, next_attempt, last_error, dead, delivered_at IS NOT NULL`

func scanNotice(row scanner) (*Notice, error) {
	var n Notice
	var next sql.NullInt64
	if err := row.Scan(&n.ID, &n.EventID, &n.Supplier, &n.OrderID, &n.Type, &n.Payload, &n.Attempts, &next, &n.LastError, &n.Dead, &n.Delivered); err != nil {
		return nil, err
	}
	n.NextAttempt = fromMS(next)
	return &n, nil
}

func (s *Store) notices(ctx context.Context, q string, args ...any) ([]*Notice, error) {
	return collect(ctx, s, scanNotice, `SELECT `+noticeColumns+` FROM outbox `+q, args...)
}

// ClaimNotices takes up to limit due notices of the given suppliers, oldest
// first, for this station to deliver. Each is leased to the station: its
// next attempt moves lease ahead, so no other station of a fleet sends it
// meanwhile, and a station that dies holding it only delays it. Recording
// the attempt (NoticeDelivered, NoticeFailed) ends the lease.
func (s *Store) ClaimNotices(ctx context.Context, suppliers []string, limit int, lease time.Duration) ([]*Notice, error) {
	if len(suppliers) == 0 {
		return nil, nil
	}
	var out []*Notice
	err := s.tx(ctx, func(tx *txn) error {
		now := s.now()
		args := []any{ms(now.Add(lease)), s.station, ms(now)}
		for _, sup := range suppliers {
			args = append(args, sup)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE outbox SET next_attempt = ?, claimed_by = ? WHERE id IN (
			SELECT id FROM outbox WHERE delivered_at IS NULL AND NOT dead AND next_attempt <= ? AND supplier IN (?`+
			strings.Repeat(", ?", len(suppliers)-1)+`) ORDER BY id LIMIT ?`+s.d.skipLocked+`) RETURNING `+noticeColumns, append(args, limit)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNotice(rows)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	slices.SortFunc(out, func(a, b *Notice) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}

// OrderNotices returns every notice about an order, oldest first.
func (s *Store) OrderNotices(ctx context.Context, orderID string) ([]*Notice, error) {
	return s.notices(ctx, `WHERE order_id = ? ORDER BY id`, orderID)
}

// NoticeDelivered marks a notice delivered.
func (s *Store) NoticeDelivered(ctx context.Context, id int64) error {
	_, err := s.exec(ctx, `UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?`, ms(s.now()), id)
	return err
}

// NoticeFailed records a failed attempt: try again at next, or, when dead,
// park it for an operator to redeliver.
func (s *Store) NoticeFailed(ctx context.Context, id int64, errText string, next time.Time, dead bool) error {
	_, err := s.exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?, dead = ? WHERE id = ?`,
		errText, ms(next), dead, id)
	return err
}

// Redeliver brings a dead notice back to life (operator).
func (s *Store) Redeliver(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `UPDATE outbox SET dead = FALSE, attempts = 0, next_attempt = ? WHERE id = ? AND delivered_at IS NULL`, ms(s.now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errors.New("no undelivered notice with that id")
	}
	return nil
}
