package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"id06/order"
)

// Claim is a worker's hold on an order: every change it makes is guarded by
// the state, the attempt and the owner it claimed with, so a worker whose
// lease was rescued (or whose order was cancelled) cannot overwrite anything.
type Claim struct {
	*order.Record
	Owner string
}

// Claim takes the most urgent order in one of the keys of moves (express
// first, then oldest holder approval), moves it to the mapped state and leases
// it to owner, one of this store's station's workers — all in one
// UPDATE … RETURNING. On PostgreSQL a row another station is claiming at
// that moment is skipped, not waited for.
func (s *Store) Claim(ctx context.Context, owner string, lease time.Duration, moves map[order.State]order.State) (*Claim, error) {
	// One indexed LIMIT 1 probe per source state, then the best of those:
	// a single IN (…) ORDER BY would sort every waiting order on each claim.
	var from []any
	var branches []string
	var cases strings.Builder
	cases.WriteString("CASE state")
	// Sorted, so each set of moves is one cached prepared statement.
	for i, f := range slices.Sorted(maps.Keys(moves)) {
		t := moves[f]
		from = append(from, f)
		branches = append(branches, fmt.Sprintf(`SELECT * FROM (SELECT id, express, approved_at, created_at FROM orders
			WHERE state = ? AND lease_owner IS NULL ORDER BY express DESC, approved_at, created_at LIMIT 1%s) AS b%d`, s.d.skipLocked, i))
		fmt.Fprintf(&cases, " WHEN '%s' THEN '%s'", f, t)
	}
	cases.WriteString(" END")
	q := `UPDATE orders SET state = ` + cases.String() + `, lease_owner = ?, lease_until = ?, station = ?,
		attempt = attempt + 1, updated_at = ?
		WHERE id = (SELECT id FROM (` + strings.Join(branches, " UNION ALL ") + `) AS c ORDER BY express DESC, approved_at, created_at LIMIT 1)
		RETURNING ` + orderColumns
	var c *Claim
	err := s.tx(ctx, func(tx *txn) error {
		// The clock is read under the write lock so events stay in time order.
		now := s.now()
		args := append([]any{owner, ms(now.Add(lease)), s.station, ms(now)}, from...)
		o, err := scanOrder(tx.QueryRowContext(ctx, q, args...))
		if errors.Is(err, ErrNotFound) {
			return ErrNothingToClaim
		}
		if err != nil {
			return err
		}
		c = &Claim{Record: o, Owner: owner}
		return addEvent(ctx, tx, o.ID, ms(now), o.State, owner, fmt.Sprintf("claimed (attempt %d)", o.Attempt))
	})
	return c, err
}

// guarded runs fn in a transaction after checking that the claim still holds its
// lease on the order in the state it expects.
func (s *Store) guarded(ctx context.Context, j *Claim, fn func(tx *txn, now int64) error) error {
	return s.tx(ctx, func(tx *txn) error {
		now := ms(s.now())
		res, err := tx.ExecContext(ctx, `UPDATE orders SET updated_at = ? WHERE id = ? AND state = ? AND attempt = ? AND lease_owner = ?`,
			now, j.ID, j.State, j.Attempt, j.Owner)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrLeaseLost
		}
		return fn(tx, now)
	})
}

// Extend renews the claim's lease.
func (s *Store) Extend(ctx context.Context, j *Claim, lease time.Duration) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		_, err := tx.ExecContext(ctx, `UPDATE orders SET lease_until = ? WHERE id = ?`, now+lease.Milliseconds(), j.ID)
		return err
	})
}

// Advance moves the claim to the next state, keeping the lease.
func (s *Store) Advance(ctx context.Context, j *Claim, to order.State, note string) error {
	err := s.guarded(ctx, j, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ? WHERE id = ?`, to, j.ID); err != nil {
			return err
		}
		return addEvent(ctx, tx, j.ID, now, to, j.Owner, note)
	})
	if err == nil {
		j.State = to
	}
	return err
}

// Release gives the claim back to the queue in state to (e.g. when a lane
// pauses before its card was started). Back to ready the order is any
// lane's again.
func (s *Store) Release(ctx context.Context, j *Claim, to order.State, note string) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, lane = CASE WHEN ? THEN NULL ELSE lane END,
			lease_owner = NULL, lease_until = NULL WHERE id = ?`, to, to == order.Ready, j.ID); err != nil {
			return err
		}
		return addEvent(ctx, tx, j.ID, now, to, j.Owner, note)
	})
}

// PhotoPassed stores the stage's products and moves the order to ready.
func (s *Store) PhotoPassed(ctx context.Context, j *Claim, blobs map[string][]byte, note string) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		for kind, data := range blobs {
			if err := putBlob(ctx, tx, j.ID, kind, data); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, reasons = '[]', lease_owner = NULL, lease_until = NULL WHERE id = ?`, order.Ready, j.ID); err != nil {
			return err
		}
		return addEvent(ctx, tx, j.ID, now, order.Ready, j.Owner, note)
	})
}

// NeedsFixPhoto sends the order back to the orderer with the reasons.
func (s *Store) NeedsFixPhoto(ctx context.Context, j *Claim, reasons []order.Reason) error {
	b, err := json.Marshal(reasons)
	if err != nil {
		return err
	}
	codes := make([]string, len(reasons))
	for i, r := range reasons {
		codes[i] = r.Code
	}
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, reasons = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?`,
			order.NeedsFix, string(b), j.ID); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, j.ID, now, order.NeedsFix, j.Owner, "photo refused: "+strings.Join(codes, ", ")); err != nil {
			return err
		}
		return s.enqueueNotice(ctx, tx, j.ID, order.NoticeNeedsFix, map[string]any{"reasons": reasons})
	})
}

// AllocateCard hands the claim a fresh card number and card UUID. Numbers
// come from one counter (a sequence on PostgreSQL, shared by the fleet) that
// only grows, so a number is never handed out twice.
func (s *Store) AllocateCard(ctx context.Context, j *Claim, prefix string) error {
	var number, id string
	err := s.guarded(ctx, j, func(tx *txn, now int64) error {
		var seq int64
		if err := tx.QueryRowContext(ctx, s.d.nextCardSeq).Scan(&seq); err != nil {
			return err
		}
		var err error
		if number, err = order.FormatCardNumber(prefix, seq); err != nil {
			return err
		}
		id = uuid.NewString()
		if _, err := tx.ExecContext(ctx, `INSERT INTO card_numbers (number, order_id, status, allocated_at) VALUES (?, ?, 'allocated', ?)`,
			number, j.ID, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET card_number = ?, card_uuid = ?, chip_uid = NULL WHERE id = ?`, number, id, j.ID); err != nil {
			return err
		}
		return addEvent(ctx, tx, j.ID, now, j.State, j.Owner, "card number "+number+" allocated")
	})
	if err == nil {
		j.CardNumber, j.CardUUID, j.ChipUID = number, id, ""
	}
	return err
}

// RecordChip binds the chip in the reader to the claim's card number. It is
// committed before the first write to the chip, so that after a crash the
// station knows which physical blank carries this order's data.
func (s *Store) RecordChip(ctx context.Context, j *Claim, uid string) error {
	err := s.guarded(ctx, j, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET chip_uid = ? WHERE id = ?`, uid, j.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE card_numbers SET chip_uid = ? WHERE number = ?`, uid, j.CardNumber); err != nil {
			return err
		}
		return addEvent(ctx, tx, j.ID, now, j.State, j.Owner, "chip "+uid+" bound to card "+j.CardNumber)
	})
	if err == nil {
		j.ChipUID = uid
	}
	return err
}

// SpoilBlank records that the blank in hand is spoiled: its card number is
// retired, and the order either tries again on a new blank (back to ready) or,
// past maxBlanks, fails.
func (s *Store) SpoilBlank(ctx context.Context, j *Claim, reason string, maxBlanks int) (failed bool, err error) {
	err = s.guarded(ctx, j, func(tx *txn, now int64) error {
		if err := retireBlank(ctx, tx, j.ID, j.CardNumber, j.ChipUID, reason, now); err != nil {
			return err
		}
		spoiled := j.BlanksSpoiled + 1
		next, note := order.Ready, fmt.Sprintf("blank spoiled (%s); card %s retired; retrying on a new blank", reason, j.CardNumber)
		failed = spoiled >= maxBlanks
		if failed {
			next, note = order.Failed, fmt.Sprintf("blank spoiled (%s); %d blanks spoiled, giving up", reason, spoiled)
		}
		// Back to ready the order is any lane's again.
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, blanks_spoiled = ?, lane = CASE WHEN ? THEN lane END,
			lease_owner = NULL, lease_until = NULL WHERE id = ?`, next, spoiled, failed, j.ID); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, j.ID, now, next, j.Owner, note); err != nil {
			return err
		}
		if failed {
			return s.enqueueNotice(ctx, tx, j.ID, order.NoticeFailed, map[string]any{"reason": reason})
		}
		return nil
	})
	return failed, err
}

// FailSpoiled retires the blank in hand and fails the order: a stage
// refused the order itself, so a new blank would fare no better.
func (s *Store) FailSpoiled(ctx context.Context, j *Claim, reason string) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		return s.failWithBlank(ctx, tx, j.ID, j.CardNumber, j.ChipUID, j.Owner, reason, now)
	})
}

// SpoilAndFail is the operator's way out for an order at the reader or the
// printer that cannot go on: its blank is retired with the card number, the
// order fails with the reason (Retry starts it over on a new blank), and a
// worker still holding it loses its claim.
func (s *Store) SpoilAndFail(ctx context.Context, id, actor, reason string) (*order.Record, error) {
	err := s.tx(ctx, func(tx *txn) error {
		number, chip, err := boundCard(ctx, tx, id, order.State.InDevice, "only an order at the reader or printer is stopped this way")
		if err != nil {
			return err
		}
		return s.failWithBlank(ctx, tx, id, number.String, chip.String, actor, reason, ms(s.now()))
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

func (s *Store) failWithBlank(ctx context.Context, tx *txn, id, number, chip, actor, reason string, now int64) error {
	spoiled := 0
	if number != "" || chip != "" {
		if err := retireBlank(ctx, tx, id, number, chip, reason, now); err != nil {
			return err
		}
		spoiled = 1
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, blanks_spoiled = blanks_spoiled + ?, lease_owner = NULL, lease_until = NULL,
		updated_at = ? WHERE id = ?`, order.Failed, spoiled, now, id); err != nil {
		return err
	}
	note := reason
	if number != "" {
		note += "; card " + number + " retired"
	}
	if err := addEvent(ctx, tx, id, now, order.Failed, actor, note); err != nil {
		return err
	}
	return s.enqueueNotice(ctx, tx, id, order.NoticeFailed, map[string]any{"reason": reason})
}

// boundCard reads the card number and chip bound to an order, after
// checking that its state allows the action (else ErrState saying why not).
func boundCard(ctx context.Context, tx *txn, id string, may func(order.State) bool, why string) (number, chip sql.NullString, err error) {
	st, err := stateOf(ctx, tx, id, "")
	if err != nil {
		return number, chip, err
	}
	if !may(st) {
		return number, chip, fmt.Errorf("%w: the order is %s; %s", ErrState, st, why)
	}
	err = tx.QueryRowContext(ctx, `SELECT card_number, chip_uid FROM orders WHERE id = ?`, id).Scan(&number, &chip)
	return number, chip, err
}

// retireBlank records the blank bound to an order as spoiled, takes its card
// number out of use for good, revokes its certificates and unbinds both
// from the order.
func retireBlank(ctx context.Context, tx *txn, id, number, chip, reason string, now int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO spoiled_blanks (order_id, card_number, chip_uid, reason, at) VALUES (?, ?, ?, ?, ?)`,
		id, nullable(number), nullable(chip), reason, now); err != nil {
		return err
	}
	if number != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE card_numbers SET status = 'spoiled' WHERE number = ?`, number); err != nil {
			return err
		}
	}
	// Certificates issued for the blank go on the CRL with it.
	if _, err := revokeCard(ctx, tx, number, RevokeSpoiled, stationActor, now, nil); err != nil {
		return err
	}
	// The print job named the retired card: it goes with it.
	_, err := tx.ExecContext(ctx, `UPDATE orders SET card_number = NULL, card_uuid = NULL, chip_uid = NULL,
		print_printer = NULL, print_job = NULL WHERE id = ?`, id)
	return err
}

// Fail ends the claim as failed with a reason the supplier is told.
func (s *Store) Fail(ctx context.Context, j *Claim, reason string) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?`, order.Failed, j.ID); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, j.ID, now, order.Failed, j.Owner, reason); err != nil {
			return err
		}
		return s.enqueueNotice(ctx, tx, j.ID, order.NoticeFailed, map[string]any{"reason": reason})
	})
}

// Encoded records what the chip carries once it is written and verified.
func (s *Store) Encoded(ctx context.Context, j *Claim, certSerial, validUntil string, sealed []byte) error {
	err := s.guarded(ctx, j, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, cert_serial = ?, valid_until = ?, sealed_secrets = ? WHERE id = ?`,
			order.Printing, certSerial, validUntil, sealed, j.ID); err != nil {
			return err
		}
		return addEvent(ctx, tx, j.ID, now, order.Printing, j.Owner, "chip "+j.ChipUID+" written and verified")
	})
	if err == nil {
		j.State, j.CertSerial, j.ValidUntil, j.SealedSecrets = order.Printing, certSerial, validUntil, sealed
	}
	return err
}

// Produced marks the card made and tells the supplier.
func (s *Store) Produced(ctx context.Context, j *Claim, note string) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, produced_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?`,
			order.Produced, now, j.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE card_numbers SET status = 'produced' WHERE number = ?`, j.CardNumber); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, j.ID, now, order.Produced, j.Owner, note); err != nil {
			return err
		}
		return s.enqueueNotice(ctx, tx, j.ID, order.NoticeProduced, map[string]any{
			"card_number": j.CardNumber, "chip_uid": j.ChipUID, "valid_until": j.ValidUntil,
			"certificate_serial": j.CertSerial, "sealed_pin_puk": string(j.SealedSecrets),
		})
	})
}

// Rescue frees leases that ran out; with own=true (this station's start-up)
// also every lease this station's previous run held, live or not: no worker
// of that run is left. A lease of another station is freed only once it ran
// out, and not even then while the order's chip is bound to a blank: that
// card is inside the other station's encoder or printer, so the order waits
// for that station (or an operator spoils the card). The order keeps its
// state and its recorded card and chip, so a worker resumes it.
func (s *Store) Rescue(ctx context.Context, own bool) (int, error) {
	var n int
	err := s.tx(ctx, func(tx *txn) error {
		now := ms(s.now())
		// A lease without a station is from before stations were named:
		// the single station of a SQLite file, so this one.
		mine := `(station = ? OR station IS NULL)`
		q := `SELECT id, state, lease_owner, coalesce(station, '') FROM orders WHERE lease_owner IS NOT NULL AND
			(lease_until < ? AND (chip_uid IS NULL OR ` + mine + `))`
		args := []any{now, s.station}
		switch {
		case own && s.sole:
			q += ` OR lease_owner IS NOT NULL`
		case own:
			q += ` OR (lease_owner IS NOT NULL AND ` + mine + `)`
			args = append(args, s.station)
		}
		rows, err := tx.QueryContext(ctx, q+s.d.skipLocked, args...)
		if err != nil {
			return err
		}
		type lost struct {
			id, owner, station string
			state              order.State
		}
		var found []lost
		for rows.Next() {
			var l lost
			if err := rows.Scan(&l.id, &l.state, &l.owner, &l.station); err != nil {
				rows.Close()
				return err
			}
			found = append(found, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, l := range found {
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`, now, l.id); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, l.id, now, l.state, "station", "lease of "+l.station+" "+l.owner+" freed; order will resume"); err != nil {
				return err
			}
		}
		n = len(found)
		return nil
	})
	return n, err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CardNumbers lists every card number an order was given, with its status.
func (s *Store) CardNumbers(ctx context.Context, orderID string) (map[string]string, error) {
	rows, err := s.query(ctx, `SELECT number, status FROM card_numbers WHERE order_id = ?`, orderID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, st string
		if err := rows.Scan(&n, &st); err != nil {
			return nil, err
		}
		out[n] = st
	}
	return out, rows.Err()
}

// SpoiledCount is how many blanks were spoiled since a time.
func (s *Store) SpoiledCount(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT count(*) FROM spoiled_blanks WHERE at >= ?`, ms(since)).Scan(&n)
	return n, err
}
