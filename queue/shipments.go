package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"id06/order"
)

// Unshipped returns produced orders not yet in a shipment.
func (s *Store) Unshipped(ctx context.Context) ([]*order.Record, error) {
	return s.orders(ctx, `WHERE state = ? AND shipment_id IS NULL ORDER BY id`, order.Produced)
}

// addressing is how a shipment's address is stored: one JSON document, as
// the packing list shows it.
type addressing struct {
	Orderer    string   `json:"orderer"`
	Address    []string `json:"address"`
	CostCenter string   `json:"cost_center"`
	Department string   `json:"department"`
}

// CreateShipments stores a packing run: each parcel, with its cards' orders
// put in it. Every order must be produced and in no other parcel, else
// nothing at all is stored (ErrState): a run never leaves a half-packed set.
func (s *Store) CreateShipments(ctx context.Context, shipments []order.Shipment, actor string) error {
	for _, sh := range shipments {
		if len(sh.Cards) == 0 {
			return fmt.Errorf("%w: shipment %s needs at least one card", ErrState, sh.ID)
		}
	}
	return s.tx(ctx, func(tx *txn) error {
		now := ms(s.now())
		for _, sh := range shipments {
			doc, err := json.Marshal(addressing{Orderer: sh.Orderer, Address: sh.Address, CostCenter: sh.CostCenter, Department: sh.Department})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO shipments (id, express, doc, created_at, created_by) VALUES (?, ?, ?, ?, ?)`,
				sh.ID, sh.Express, doc, now, actor); err != nil {
				return err
			}
			for _, c := range sh.Cards {
				res, err := tx.ExecContext(ctx, `UPDATE orders SET shipment_id = ?, updated_at = ? WHERE id = ? AND state = ? AND shipment_id IS NULL`,
					sh.ID, now, c.OrderID, order.Produced)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n != 1 {
					return fmt.Errorf("%w: order %s is not a produced card outside a shipment", ErrState, c.OrderID)
				}
				if err := addEvent(ctx, tx, c.OrderID, now, order.Produced, actor, "packed in shipment "+sh.ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

const shipmentColumns = `id, express, doc, created_at, created_by, shipped_at, coalesce(shipped_by, '')`

func scanShipment(row scanner) (*order.Shipment, error) {
	var sh order.Shipment
	var doc []byte
	var created, shipped sql.NullInt64
	err := row.Scan(&sh.ID, &sh.Express, &doc, &created, &sh.CreatedBy, &shipped, &sh.ShippedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var a addressing
	if err := json.Unmarshal(doc, &a); err != nil {
		return nil, fmt.Errorf("shipment %s: addressing: %w", sh.ID, err)
	}
	sh.Orderer, sh.Address, sh.CostCenter, sh.Department = a.Orderer, a.Address, a.CostCenter, a.Department
	sh.CreatedAt, sh.ShippedAt = fromMS(created), fromMS(shipped)
	return &sh, nil
}

// Shipments returns parcels, those still to ship first, then newest first,
// without their cards (see ShipmentOrders).
func (s *Store) Shipments(ctx context.Context, limit int) ([]*order.Shipment, error) {
	return collect(ctx, s, scanShipment, `SELECT `+shipmentColumns+` FROM shipments
		ORDER BY shipped_at IS NOT NULL, express DESC, created_at DESC LIMIT ?`, limit)
}

// ShipmentOrders returns the orders in the given parcels in one query,
// ordered by parcel and card number; ShipmentID tells them apart.
func (s *Store) ShipmentOrders(ctx context.Context, ids []string) ([]*order.Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.orders(ctx, `WHERE shipment_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY shipment_id, card_number`, args...)
}

// Shipment returns one parcel with its orders.
func (s *Store) Shipment(ctx context.Context, id string) (*order.Shipment, []*order.Record, error) {
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
		if err := tx.QueryRowContext(ctx, `SELECT shipped_at FROM shipments WHERE id = ?`+s.d.forUpdate, id).Scan(&shipped); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if shipped.Valid {
			return fmt.Errorf("%w: shipment %s was already shipped", ErrState, id)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, card_number FROM orders WHERE shipment_id = ? AND state = ?`, id, order.Produced)
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
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, updated_at = ? WHERE id = ?`, order.Shipped, now, c.order); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, c.order, now, order.Shipped, actor, "shipped in "+id); err != nil {
				return err
			}
			if err := s.enqueueNotice(ctx, tx, c.order, order.NoticeShipped, map[string]any{"shipment_id": id, "card_number": c.number}); err != nil {
				return err
			}
		}
		n = len(cards)
		_, err = tx.ExecContext(ctx, `UPDATE shipments SET shipped_at = ?, shipped_by = ? WHERE id = ?`, now, actor, id)
		return err
	})
	return n, err
}
