package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Shipment is a parcel of produced cards for one delivery address (or one
// express card). Its cards are the orders whose ShipmentID names it.
type Shipment struct {
	ID        string
	Express   bool
	Doc       []byte // addressing as JSON, as the station wrote it
	CreatedAt time.Time
	CreatedBy string
	ShippedAt time.Time
	ShippedBy string
}

// Unshipped returns produced orders not yet in a shipment.
func (s *Store) Unshipped(ctx context.Context) ([]*Order, error) {
	return s.orders(ctx, `WHERE state = ? AND shipment_id IS NULL ORDER BY id`, Produced)
}

// CreateShipment stores a parcel and puts the orders in it. Every order must
// be produced and in no other parcel, else nothing is stored (ErrState).
func (s *Store) CreateShipment(ctx context.Context, sh Shipment, orderIDs []string, actor string) error {
	if len(orderIDs) == 0 {
		return fmt.Errorf("%w: a shipment needs at least one card", ErrState)
	}
	return s.tx(ctx, func(tx *txn) error {
		now := ms(s.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO shipments (id, express, doc, created_at, created_by) VALUES (?, ?, ?, ?, ?)`,
			sh.ID, sh.Express, sh.Doc, now, actor); err != nil {
			return err
		}
		for _, id := range orderIDs {
			res, err := tx.ExecContext(ctx, `UPDATE orders SET shipment_id = ?, updated_at = ? WHERE id = ? AND state = ? AND shipment_id IS NULL`,
				sh.ID, now, id, Produced)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("%w: order %s is not a produced card outside a shipment", ErrState, id)
			}
			if err := addEvent(ctx, tx, id, now, Produced, actor, "packed in shipment "+sh.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

const shipmentColumns = `id, express, doc, created_at, created_by, shipped_at, coalesce(shipped_by, '')`

func scanShipment(row scanner) (*Shipment, error) {
	var sh Shipment
	var created, shipped sql.NullInt64
	err := row.Scan(&sh.ID, &sh.Express, &sh.Doc, &created, &sh.CreatedBy, &shipped, &sh.ShippedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	sh.CreatedAt, sh.ShippedAt = fromMS(created), fromMS(shipped)
	return &sh, nil
}

// Shipments returns parcels, those still to ship first, then newest first.
func (s *Store) Shipments(ctx context.Context, limit int) ([]*Shipment, error) {
	rows, err := s.query(ctx, `SELECT `+shipmentColumns+` FROM shipments
		ORDER BY shipped_at IS NOT NULL, express DESC, created_at DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Shipment
	for rows.Next() {
		sh, err := scanShipment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// Shipment returns one parcel with its orders.
func (s *Store) Shipment(ctx context.Context, id string) (*Shipment, []*Order, error) {
	sh, err := scanShipment(s.queryRow(ctx, `SELECT `+shipmentColumns+` FROM shipments WHERE id = ?`, id))
	if err != nil {
		return nil, nil, err
	}
	orders, err := s.orders(ctx, `WHERE shipment_id = ? ORDER BY card_number`, id)
	return sh, orders, err
}

// MarkShipped records that a parcel left: its produced orders move to
// shipped and each supplier is told, in the same transaction.
func (s *Store) MarkShipped(ctx context.Context, id, actor string) (int, error) {
	var n int
	err := s.tx(ctx, func(tx *txn) error {
		var shipped sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT shipped_at FROM shipments WHERE id = ?`, id).Scan(&shipped); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if shipped.Valid {
			return fmt.Errorf("%w: shipment %s was already shipped", ErrState, id)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, card_number FROM orders WHERE shipment_id = ? AND state = ?`, id, Produced)
		if err != nil {
			return err
		}
		type card struct{ order, number string }
		var cards []card
		for rows.Next() {
			var c card
			var number sql.NullString
			if err := rows.Scan(&c.order, &number); err != nil {
				rows.Close()
				return err
			}
			c.number = number.String
			cards = append(cards, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(cards) == 0 {
			return fmt.Errorf("%w: shipment %s holds no produced cards", ErrState, id)
		}
		now := ms(s.now())
		for _, c := range cards {
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, updated_at = ? WHERE id = ?`, Shipped, now, c.order); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, c.order, now, Shipped, actor, "shipped in "+id); err != nil {
				return err
			}
			if err := s.enqueueNotice(ctx, tx, c.order, "order.shipped", map[string]any{"shipment_id": id, "card_number": c.number}); err != nil {
				return err
			}
		}
		n = len(cards)
		_, err = tx.ExecContext(ctx, `UPDATE shipments SET shipped_at = ?, shipped_by = ? WHERE id = ?`, now, actor, id)
		return err
	})
	return n, err
}
