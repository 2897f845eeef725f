package queue

// The print floor: the operators' actions on produced cards and the figures
// the operator page and the metrics show.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"id06/order"
)

// Reproduce records the card of a produced order as spoiled (a smudged print,
// a card dropped on the floor) and sends the order back to the device worker
// for a new blank and a new card number; the old number is retired, never
// reused; its certificates go on the CRL. The supplier is told the old card
// number is void.
func (s *Store) Reproduce(ctx context.Context, id, actor, reason string) (*order.Record, error) {
	err := s.tx(ctx, func(tx *txn) error {
		number, uid, err := boundCard(ctx, tx, id, order.State.Reproducible, "only a produced, unshipped card can be re-produced")
		if err != nil {
			return err
		}
		now := ms(s.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO spoiled_blanks (order_id, card_number, chip_uid, reason, at) VALUES (?, ?, ?, ?, ?)`,
			id, number, uid, "operator: "+reason, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE card_numbers SET status = 'spoiled' WHERE number = ?`, number); err != nil {
			return err
		}
		if _, err := revokeCard(ctx, tx, number.String, RevokeSuperseded, actor, now, nil); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, card_number = NULL, card_uuid = NULL, chip_uid = NULL,
			cert_serial = NULL, sealed_secrets = NULL, produced_at = NULL, shipment_id = NULL, lane = NULL, print_printer = NULL, print_job = NULL,
			lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`, order.Ready, now, id); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, id, now, order.Ready, actor, fmt.Sprintf("card %s spoiled (%s); re-producing on a new blank", number.String, reason)); err != nil {
			return err
		}
		return s.enqueueNotice(ctx, tx, id, order.NoticeCardSpoiled, map[string]any{"card_number": number.String, "reason": reason})
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// Changes is a fingerprint of what the operator page shows: it moves when
// an order changes state, a station action is audited, or a notice is
// delivered, given up or rescheduled, so a page can poll it cheaply and
// refresh only when it moved. Every part is one index probe.
func (s *Store) Changes(ctx context.Context) (string, error) {
	var events, audit, delivered, dead, next int64
	err := s.queryRow(ctx, `SELECT
		(SELECT coalesce(max(id), 0) FROM events),
		(SELECT coalesce(max(id), 0) FROM audit),
		(SELECT coalesce(max(delivered_at), 0) FROM outbox),
		(SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND dead),
		(SELECT coalesce(max(next_attempt), 0) FROM outbox WHERE delivered_at IS NULL AND NOT dead)`).Scan(&events, &audit, &delivered, &dead, &next)
	return fmt.Sprintf("%d.%d.%d.%d.%d", events, audit, delivered, dead, next), err
}

// ExpressOpen returns express orders not yet produced (nor ended), the most
// urgent first.
func (s *Store) ExpressOpen(ctx context.Context) ([]*order.Record, error) {
	return s.orders(ctx, `WHERE deadline IS NOT NULL AND state NOT IN ('produced', 'shipped', 'failed', 'cancelled') ORDER BY deadline LIMIT 200`)
}

func (s *Store) orders(ctx context.Context, where string, args ...any) ([]*order.Record, error) {
	return collect(ctx, s, scanOrder, `SELECT `+orderColumns+` FROM orders `+where, args...)
}

// ProducedSince counts the cards produced since t.
func (s *Store) ProducedSince(ctx context.Context, t time.Time) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT count(*) FROM orders WHERE produced_at >= ?`, ms(t)).Scan(&n)
	return n, err
}

// ExpressMissed counts express orders that were, or are now, past their
// deadline: produced late, or still open (or ended) after it.
func (s *Store) ExpressMissed(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT count(*) FROM orders WHERE deadline IS NOT NULL AND deadline <
		coalesce(produced_at, CASE WHEN state IN ('failed', 'cancelled') THEN updated_at ELSE ? END)`, ms(s.now())).Scan(&n)
	return n, err
}

// RecentNotices returns the newest notices first (operator page).
func (s *Store) RecentNotices(ctx context.Context, limit int) ([]*Notice, error) {
	return s.notices(ctx, `ORDER BY id DESC LIMIT ?`, limit)
}

// BlobKinds lists which files an order has, without reading them.
func (s *Store) BlobKinds(ctx context.Context, id string) (map[string]bool, error) {
	rows, err := s.query(ctx, `SELECT kind FROM blobs WHERE order_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// OutboxCounts counts notices still to deliver and notices given up on, for
// the given suppliers or, with none given, for all.
func (s *Store) OutboxCounts(ctx context.Context, suppliers ...string) (pending, dead int, err error) {
	q := `SELECT count(*) FILTER (WHERE delivered_at IS NULL AND NOT dead), count(*) FILTER (WHERE dead) FROM outbox`
	var args []any
	if len(suppliers) > 0 {
		q += ` WHERE supplier IN (?` + strings.Repeat(", ?", len(suppliers)-1) + `)`
		for _, sup := range suppliers {
			args = append(args, sup)
		}
	}
	err = s.queryRow(ctx, q, args...).Scan(&pending, &dead)
	return pending, dead, err
}
