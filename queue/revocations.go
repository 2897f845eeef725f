package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"id06/order"
)

// Revocation reasons the station gives by itself; the others come from the
// supplier or an operator (personalize.Reasons).
const (
	RevokeSpoiled    = "spoiled"    // a blank retired after its certificates were issued
	RevokeSuperseded = "superseded" // a re-produced card, or certificates a resumed run replaced on the chip
)

// stationActor signs the revocations the station makes by itself.
const stationActor = "station"

// ErrRevoked: the card was revoked before, for another reason.
var ErrRevoked = errors.New("the card is already revoked")

// IssuedCert is a certificate the station issued for a chip.
type IssuedCert struct {
	Serial     string // lower-case hex
	OrderID    string
	CardNumber string
	Slot       string // "9a" or "9e"
	NotAfter   time.Time
	IssuedAt   time.Time
}

// Revocation is a revoked certificate.
type Revocation struct {
	Serial string
	Reason string
	At     time.Time
}

// CardRevocation is a card whose certificates were put on the CRL.
type CardRevocation struct {
	OrderID    string
	CardNumber string
	Reason     string
	At         time.Time
	Actor      string
	Serials    []string
}

// RecordCert records a certificate issued for the job's card. It is
// committed before the certificate goes onto the chip, so that whatever
// happens to the blank afterwards, the certificate can be revoked.
func (s *Store) RecordCert(ctx context.Context, j *Claim, slot, serial string, notAfter time.Time) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO issued_certs (serial, order_id, card_number, slot, not_after, issued_at) VALUES (?, ?, ?, ?, ?, ?)`,
			serial, j.ID, j.CardNumber, slot, ms(notAfter), now)
		return err
	})
}

// SupersedeCerts revokes the certificates issued for the job's card other
// than keep: those of an interrupted run whose keys the resumed run
// replaced on the chip.
func (s *Store) SupersedeCerts(ctx context.Context, j *Claim, keep []string) error {
	return s.guarded(ctx, j, func(tx *txn, now int64) error {
		_, err := revokeCard(ctx, tx, j.CardNumber, RevokeSuperseded, stationActor, now, keep)
		return err
	})
}

// revokeCard puts every certificate issued for a card number on the CRL,
// but those in keep and those already there, in the caller's transaction.
func revokeCard(ctx context.Context, tx *txn, number, reason, actor string, now int64, keep []string) ([]string, error) {
	if number == "" {
		return nil, nil
	}
	q := `SELECT serial FROM issued_certs WHERE card_number = ? AND serial NOT IN (SELECT serial FROM revocations)`
	args := []any{number}
	if len(keep) > 0 {
		q += ` AND serial NOT IN (?` + strings.Repeat(`, ?`, len(keep)-1) + `)`
		for _, k := range keep {
			args = append(args, k)
		}
	}
	serials, err := collect(ctx, tx, func(row scanner) (string, error) {
		var serial string
		return serial, row.Scan(&serial)
	}, q, args...)
	if err != nil {
		return nil, err
	}
	for _, serial := range serials {
		if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (serial, reason, at, actor) VALUES (?, ?, ?, ?)`, serial, reason, now, actor); err != nil {
			return nil, err
		}
	}
	return serials, nil
}

// Revoke puts the certificates of an order's card on the CRL: the card was
// lost, stolen or damaged, its holder left, or it is superseded. The order
// keeps its state (produced or shipped: the card was made) and the supplier
// is sent order.revoked in the same transaction. Revoking again for the
// same reason changes nothing and answers the first revocation (created
// false); for another reason it is ErrRevoked.
func (s *Store) Revoke(ctx context.Context, id, supplier, actor, reason string) (rev *CardRevocation, created bool, err error) {
	err = s.tx(ctx, func(tx *txn) error {
		st, err := stateOf(ctx, tx, id, supplier)
		if err != nil {
			return err
		}
		if st != order.Produced && st != order.Shipped {
			return fmt.Errorf("%w: the order is %s; only a produced or shipped card can be revoked", ErrState, st)
		}
		var number, certSerial, validUntil sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT card_number, cert_serial, valid_until FROM orders WHERE id = ?`, id).Scan(&number, &certSerial, &validUntil); err != nil {
			return err
		}
		now := ms(s.now())
		if err := recordLegacyCert(ctx, tx, id, number.String, certSerial.String, validUntil.String, now); err != nil {
			return err
		}
		serials, err := revokeCard(ctx, tx, number.String, reason, actor, now, nil)
		if err != nil {
			return err
		}
		if len(serials) == 0 {
			prev, err := cardRevocation(ctx, tx, id, number.String)
			switch {
			case err != nil:
				return err
			case prev == nil:
				return fmt.Errorf("%w: no certificate is recorded for card %s", ErrState, number.String)
			case prev.Reason != reason:
				return fmt.Errorf("%w: card %s was revoked on %s (%s)", ErrRevoked, number.String, prev.At.Format(time.RFC3339), prev.Reason)
			}
			rev = prev
			return nil
		}
		note := fmt.Sprintf("card %s revoked (%s): certificates %s on the CRL", number.String, reason, strings.Join(serials, ", "))
		if err := addEvent(ctx, tx, id, now, st, actor, note); err != nil {
			return err
		}
		if err := s.enqueueNotice(ctx, tx, id, order.NoticeRevoked, map[string]any{
			"card_number": number.String, "reason": reason, "certificate_serials": serials}); err != nil {
			return err
		}
		rev = &CardRevocation{OrderID: id, CardNumber: number.String, Reason: reason, At: time.UnixMilli(now).UTC(), Actor: actor, Serials: serials}
		created = true
		return nil
	})
	return rev, created, err
}

// recordLegacyCert records the 9A certificate of a card made before the
// station recorded certificates (only its serial is on the order), so that
// it too can be revoked.
func recordLegacyCert(ctx context.Context, tx *txn, id, number, serial, validUntil string, now int64) error {
	if number == "" || serial == "" {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM issued_certs WHERE card_number = ?`, number).Scan(&n); err != nil || n > 0 {
		return err
	}
	notAfter := now
	if t, err := time.Parse(time.DateOnly, validUntil); err == nil {
		notAfter = ms(t.AddDate(0, 0, 1))
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO issued_certs (serial, order_id, card_number, slot, not_after, issued_at) VALUES (?, ?, ?, '9a', ?, ?)`,
		serial, id, number, notAfter, now)
	return err
}

// cardRevocation is the revocation of a card all of whose certificates are
// on the CRL (the latest one), or nil while any of them is not.
func cardRevocation(ctx context.Context, q rowQuerier, id, number string) (*CardRevocation, error) {
	if number == "" {
		return nil, nil
	}
	var live int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM issued_certs WHERE card_number = ? AND serial NOT IN (SELECT serial FROM revocations)`, number).Scan(&live); err != nil || live > 0 {
		return nil, err
	}
	rev := &CardRevocation{OrderID: id, CardNumber: number}
	var at int64
	err := q.QueryRowContext(ctx, `SELECT r.reason, r.at, r.actor FROM revocations r JOIN issued_certs c ON c.serial = r.serial
		WHERE c.card_number = ? ORDER BY r.at DESC, r.serial LIMIT 1`, number).Scan(&rev.Reason, &at, &rev.Actor)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rev.At = time.UnixMilli(at).UTC()
	return rev, nil
}

// rowQuerier is a transaction or the read pool.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) scanner
}

// readPool reads through the store's pool in the dialect's placeholders.
type readPool struct{ s *Store }

func (p readPool) QueryRowContext(ctx context.Context, query string, args ...any) scanner {
	return p.s.queryRow(ctx, query, args...)
}

// OrderRevocation is the revocation of the order's current card, or nil.
func (s *Store) OrderRevocation(ctx context.Context, id string) (*CardRevocation, error) {
	var number sql.NullString
	if err := s.queryRow(ctx, `SELECT card_number FROM orders WHERE id = ?`, id).Scan(&number); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return cardRevocation(ctx, readPool{s}, id, number.String)
}

// CRLEntries returns the revoked certificates that have not expired by now:
// what the CRL lists (an expired certificate is invalid without it).
func (s *Store) CRLEntries(ctx context.Context, now time.Time) ([]Revocation, error) {
	return collect(ctx, s, func(row scanner) (Revocation, error) {
		var r Revocation
		var at int64
		err := row.Scan(&r.Serial, &r.Reason, &at)
		r.At = time.UnixMilli(at).UTC()
		return r, err
	}, `SELECT r.serial, r.reason, r.at FROM revocations r JOIN issued_certs c ON c.serial = r.serial
		WHERE c.not_after > ? ORDER BY r.at, r.serial`, ms(now))
}

// RevocationsMark changes whenever a certificate is revoked: a CRL issued
// under an older mark is out of date.
func (s *Store) RevocationsMark(ctx context.Context) (string, error) {
	var n, at int64
	err := s.queryRow(ctx, `SELECT count(*), coalesce(max(at), 0) FROM revocations`).Scan(&n, &at)
	return fmt.Sprintf("%d.%d", n, at), err
}

// NextCRLNumber hands out the number of the next CRL; numbers only grow.
func (s *Store) NextCRLNumber(ctx context.Context) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *txn) error {
		return tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value`).Scan(&n)
	})
	return n, err
}

// RevokedCards lists the most recent revocations, one row per card and
// reason, newest first: for the operator page.
func (s *Store) RevokedCards(ctx context.Context, limit int) ([]CardRevocation, error) {
	return collect(ctx, s, func(row scanner) (CardRevocation, error) {
		var r CardRevocation
		var at int64
		var serials string
		err := row.Scan(&r.OrderID, &r.CardNumber, &r.Reason, &at, &r.Actor, &serials)
		r.At, r.Serials = time.UnixMilli(at).UTC(), strings.Fields(serials)
		return r, err
	}, `SELECT c.order_id, c.card_number, r.reason, max(r.at), r.actor, string_agg(r.serial, ' ')
		FROM revocations r JOIN issued_certs c ON c.serial = r.serial
		GROUP BY c.order_id, c.card_number, r.reason, r.actor ORDER BY max(r.at) DESC LIMIT ?`, limit)
}

// IssuedCerts lists the certificates issued for an order, oldest first.
func (s *Store) IssuedCerts(ctx context.Context, id string) ([]IssuedCert, error) {
	return collect(ctx, s, func(row scanner) (IssuedCert, error) {
		var c IssuedCert
		var notAfter, issued int64
		err := row.Scan(&c.Serial, &c.OrderID, &c.CardNumber, &c.Slot, &notAfter, &issued)
		c.NotAfter, c.IssuedAt = time.UnixMilli(notAfter).UTC(), time.UnixMilli(issued).UTC()
		return c, err
	}, `SELECT serial, order_id, card_number, slot, not_after, issued_at FROM issued_certs
		WHERE order_id = ? ORDER BY issued_at, slot`, id)
}
