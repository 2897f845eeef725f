package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"id06/order"
)

// ClaimLane is a production lane's claim (docs/design.md §9): the card in
// the lane's own hand first (an order in the encoder or printer recorded on
// this station's lane, left there by a fault, a pause or a crash), else the
// most urgent ready order (express first, then the oldest holder approval),
// which moves to encoding on the lane. A card in another lane's hand, of
// this station or another, is never taken: it is physically in that lane's
// printer until that lane finishes it or an operator spoils it. The lease
// is the station's, as the fleet's claims are; on PostgreSQL a row another
// station is claiming at that moment is skipped, not waited for.
func (s *Store) ClaimLane(ctx context.Context, owner, lane string, lease time.Duration) (*Claim, error) {
	var c *Claim
	err := s.tx(ctx, func(tx *txn) error {
		now := s.now()
		var id string
		// A card without a station is from before stations were named: the
		// single station of a SQLite file, so this one (as Rescue counts it).
		err := tx.QueryRowContext(ctx, `SELECT id FROM orders WHERE lane = ? AND (station = ? OR station IS NULL)
			AND state IN (?, ?) AND lease_owner IS NULL LIMIT 1`+s.d.skipLocked,
			lane, s.station, order.Encoding, order.Printing).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, `SELECT id FROM orders WHERE state = ? AND lease_owner IS NULL
				ORDER BY express DESC, approved_at, created_at LIMIT 1`+s.d.skipLocked, order.Ready).Scan(&id)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNothingToClaim
		}
		if err != nil {
			return err
		}
		o, err := scanOrder(tx.QueryRowContext(ctx, `UPDATE orders SET state = CASE WHEN state = '`+string(order.Ready)+`' THEN '`+string(order.Encoding)+`' ELSE state END,
			lane = ?, station = ?, lease_owner = ?, lease_until = ?, attempt = attempt + 1, updated_at = ? WHERE id = ? RETURNING `+orderColumns,
			lane, s.station, owner, ms(now.Add(lease)), ms(now), id))
		if err != nil {
			return err
		}
		c = &Claim{Record: o, Owner: owner}
		return addEvent(ctx, tx, o.ID, ms(now), o.State, owner, fmt.Sprintf("claimed on lane %s (attempt %d)", lane, o.Attempt))
	})
	return c, err
}

// RecordPrint records the card's print job and the printer it goes to,
// before it is submitted: after a crash the lane asks that printer about
// that job first, so the card is never printed twice.
func (s *Store) RecordPrint(ctx context.Context, c *Claim, printerID, jobID string) error {
	if c.PrintPrinter == printerID && c.PrintJob == jobID {
		return nil
	}
	err := s.guarded(ctx, c, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET print_printer = ?, print_job = ? WHERE id = ?`, printerID, jobID, c.ID); err != nil {
			return err
		}
		return addEvent(ctx, tx, c.ID, now, c.State, c.Owner, fmt.Sprintf("print job %s on printer %s (lane %s)", jobID, printerID, c.Lane))
	})
	if err == nil {
		c.PrintPrinter, c.PrintJob = printerID, jobID
	}
	return err
}

// SpoilInHand is an operator spoiling the card in a lane's hand (a jam the
// lane cannot get past): the blank is retired with its card number and the
// order goes back to ready for any lane. A worker still holding the order
// loses its claim.
func (s *Store) SpoilInHand(ctx context.Context, id, lane, actor, reason string) (*order.Record, error) {
	err := s.tx(ctx, func(tx *txn) error {
		number, chip, err := boundCard(ctx, tx, id, order.State.InDevice, "only a card in a lane's encoder or printer is spoiled this way")
		if err != nil {
			return err
		}
		var held, station sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT lane, station FROM orders WHERE id = ?`, id).Scan(&held, &station); err != nil {
			return err
		}
		if held.String != lane || (station.Valid && station.String != s.station) {
			return fmt.Errorf("%w: the order's card is in lane %q of station %q, not this station's lane %q", ErrState, held.String, station.String, lane)
		}
		now := ms(s.now())
		if number.String != "" || chip.String != "" {
			if err := retireBlank(ctx, tx, id, number.String, chip.String, "operator: "+reason, now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, blanks_spoiled = blanks_spoiled + 1, lane = NULL,
			lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`, order.Ready, now, id); err != nil {
			return err
		}
		note := fmt.Sprintf("card in lane %s's hand spoiled by an operator (%s)", lane, reason)
		if number.String != "" {
			note += "; card " + number.String + " retired"
		}
		return addEvent(ctx, tx, id, now, order.Ready, actor, note+"; back to ready for any lane")
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}
