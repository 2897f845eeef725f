package queue

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"id06/order"
)

const orderColumns = `id, coalesce(supplier_order_id, id), supplier, body_hash, doc, card_type, express, trade_org_required, state,
	approved_at, deadline, valid_until, card_number, card_uuid, chip_uid, cert_serial, sealed_secrets,
	reasons, photo_override, attempt, blanks_spoiled, lease_owner, lease_until, shipment_id,
	created_at, updated_at, produced_at, station, lane, print_printer, print_job`

type scanner interface{ Scan(...any) error }

func scanOrder(row scanner) (*order.Record, error) {
	var (
		o                                                          order.Record
		approved, deadline, leaseUntil, created, updated, produced sql.NullInt64
		validUntil, cardNumber, cardUUID, chipUID, certSerial      sql.NullString
		override, leaseOwner, shipment, station                    sql.NullString
		lane, printPrinter, printJob                               sql.NullString
		reasons                                                    string
	)
	err := row.Scan(&o.ID, &o.SupplierOrderID, &o.Supplier, &o.BodyHash, &o.Doc, &o.CardType, &o.Express, &o.TradeOrgRequired, &o.State,
		&approved, &deadline, &validUntil, &cardNumber, &cardUUID, &chipUID, &certSerial, &o.SealedSecrets,
		&reasons, &override, &o.Attempt, &o.BlanksSpoiled, &leaseOwner, &leaseUntil, &shipment,
		&created, &updated, &produced, &station, &lane, &printPrinter, &printJob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	o.ApprovedAt, o.Deadline, o.LeaseUntil = fromMS(approved), fromMS(deadline), fromMS(leaseUntil)
	o.CreatedAt, o.UpdatedAt, o.ProducedAt = fromMS(created), fromMS(updated), fromMS(produced)
	o.ValidUntil, o.CardNumber, o.CardUUID, o.ChipUID = validUntil.String, cardNumber.String, cardUUID.String, chipUID.String
	o.CertSerial, o.PhotoOverride, o.LeaseOwner, o.ShipmentID = certSerial.String, override.String, leaseOwner.String, shipment.String
	o.Station = station.String
	o.Lane, o.PrintPrinter, o.PrintJob = lane.String, printPrinter.String, printJob.String
	if err := json.Unmarshal([]byte(reasons), &o.Reasons); err != nil {
		return nil, fmt.Errorf("order %s: reasons: %w", o.ID, err)
	}
	return &o, nil
}

// NewOrder is an order as the intake API accepted it.
type NewOrder struct {
	ID               string
	Supplier         string
	BodyHash         string // identifies the body for idempotent intake
	Doc              []byte
	CardType         string
	Express          bool
	TradeOrgRequired bool
	HolderNames      []string // what the operators' search finds the order by (order.Order.HolderNames)
	Approvals        []order.Approval
	Photo            []byte
	Logo             []byte
}

// Submit stores a new order. Submitting the same body under the same id again
// returns the stored order with created=false; a different body is ErrConflict.
// The id is the supplier's (NewOrder.ID, unique per supplier); the order's
// station-wide key (order.Record.ID) is that id when no other supplier took
// it first.
func (s *Store) Submit(ctx context.Context, n NewOrder, actor string) (o *order.Record, created bool, err error) {
	var key string
	intake := func(tx *txn) error {
		created = false
		var hash string
		err := tx.QueryRowContext(ctx, `SELECT id, body_hash FROM orders WHERE supplier = ? AND supplier_order_id = ?`,
			n.Supplier, n.ID).Scan(&key, &hash)
		if err == nil {
			if hash != n.BodyHash {
				return ErrConflict
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if key, err = freeKey(ctx, tx, n.ID, n.Supplier); err != nil {
			return err
		}
		created = true
		now := ms(s.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, supplier_order_id, supplier, body_hash, doc, card_type, express,
			trade_org_required, state, holder_names, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key, n.ID, n.Supplier, n.BodyHash, n.Doc, n.CardType, n.Express, n.TradeOrgRequired, order.Received,
			strings.Join(n.HolderNames, "\n"), now, now); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, key, now, order.Received, actor, "order received"); err != nil {
			return err
		}
		for _, a := range n.Approvals {
			if err := insertApproval(ctx, tx, key, a); err != nil {
				return err
			}
		}
		if err := putBlob(ctx, tx, key, "photo", n.Photo); err != nil {
			return err
		}
		if len(n.Logo) > 0 {
			if err := putBlob(ctx, tx, key, "logo", n.Logo); err != nil {
				return err
			}
		}
		return s.promoteIfApproved(ctx, tx, key, order.Received, actor)
	}
	err = s.tx(ctx, intake)
	if err != nil && s.d.unique(err) {
		// Another station stored the same order between our look and our
		// insert: look again, and answer as for a repeated submission.
		err = s.tx(ctx, intake)
	}
	if err != nil {
		return nil, false, err
	}
	o, err = s.Get(ctx, key)
	return o, created, err
}

// freeKey picks the station-wide key of a new order: the supplier's id
// when it is free, else that id with a suffix from the supplier's name. It
// keeps to the order id rule (order.CheckID) when id does: the key names
// print jobs and files.
func freeKey(ctx context.Context, tx *txn, id, supplier string) (string, error) {
	sum := sha256.Sum256([]byte(supplier))
	base := id[:min(len(id), 50)] + "-" + hex.EncodeToString(sum[:4])
	for i := 0; i < 100; i++ {
		key := id
		switch {
		case i == 1:
			key = base
		case i > 1:
			key = fmt.Sprintf("%s-%d", base, i)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE id = ?`, key).Scan(&n); err != nil || n == 0 {
			return key, err
		}
	}
	return "", fmt.Errorf("order %s: no free key after 100 tries", id)
}

// SupplierOrder finds an order by its supplier's id, as the supplier API
// names it; ErrNotFound when the supplier has none by that id.
func (s *Store) SupplierOrder(ctx context.Context, supplier, id string) (*order.Record, error) {
	return scanOrder(s.queryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE supplier = ? AND supplier_order_id = ?`, supplier, id))
}

// AddApproval records an approval; an order waiting for it moves to the queue.
func (s *Store) AddApproval(ctx context.Context, id, supplier string, a order.Approval, actor string) (*order.Record, error) {
	err := s.tx(ctx, func(tx *txn) error {
		state, err := stateOf(ctx, tx, id, supplier)
		if err != nil {
			return err
		}
		if err := insertApproval(ctx, tx, id, a); err != nil {
			return err
		}
		if state != order.AwaitingApproval {
			return nil
		}
		return s.promoteIfApproved(ctx, tx, id, order.AwaitingApproval, actor)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

func insertApproval(ctx context.Context, tx *txn, id string, a order.Approval) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO approvals (order_id, kind, method, at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		id, a.Kind, a.Method, ms(a.At))
	return err
}

// promoteIfApproved moves an order from `from` to queued when the holder (and,
// where required, a trade organisation) approved it, else to awaiting_approval.
func (s *Store) promoteIfApproved(ctx context.Context, tx *txn, id string, from order.State, actor string) error {
	var tradeRequired, express bool
	if err := tx.QueryRowContext(ctx, `SELECT trade_org_required, express FROM orders WHERE id = ?`, id).Scan(&tradeRequired, &express); err != nil {
		return err
	}
	approvals, err := approvalsOf(ctx, tx, id)
	if err != nil {
		return err
	}
	holderAt, missing := order.Approved(approvals, tradeRequired)
	now := ms(s.now())
	if missing != "" {
		if from == order.AwaitingApproval {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, updated_at = ? WHERE id = ?`, order.AwaitingApproval, now, id); err != nil {
			return err
		}
		return addEvent(ctx, tx, id, now, order.AwaitingApproval, actor, "waiting for "+missing)
	}
	deadline := sql.NullInt64{}
	if express {
		deadline = sql.NullInt64{Int64: ms(holderAt.Add(order.ExpressWindow)), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, approved_at = ?, deadline = ?, updated_at = ? WHERE id = ?`,
		order.Queued, ms(holderAt), deadline, now, id); err != nil {
		return err
	}
	return addEvent(ctx, tx, id, now, order.Queued, actor, "approved by the holder; queued for production")
}

// stateOf reads an order's state in a write transaction and, on
// PostgreSQL, locks its row until the transaction ends, so that what the
// caller decides from the state still holds when it writes.
func stateOf(ctx context.Context, tx *txn, id, supplier string) (order.State, error) {
	var st order.State
	q := `SELECT state FROM orders WHERE id = ?`
	args := []any{id}
	if supplier != "" {
		q += ` AND supplier = ?`
		args = append(args, supplier)
	}
	err := tx.QueryRowContext(ctx, q+tx.s.d.forUpdate, args...).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return st, err
}

func addEvent(ctx context.Context, tx *txn, id string, at int64, st order.State, actor, note string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events (order_id, at, state, actor, note) VALUES (?, ?, ?, ?, ?)`,
		id, at, st, actor, note)
	return err
}

// Get returns an order by id.
func (s *Store) Get(ctx context.Context, id string) (*order.Record, error) {
	return scanOrder(s.queryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = ?`, id))
}

// Filter selects orders for List.
type Filter struct {
	Supplier string      // "" = all suppliers (operators)
	State    order.State // "" = any
	After    string      // page after this order id
	Search   string      // order id, card number, chip UID or holder name (operators)
	Limit    int
}

// List returns orders in id order, for paging with After.
func (s *Store) List(ctx context.Context, f Filter) ([]*order.Record, error) {
	var where []string
	var args []any
	if f.Supplier != "" {
		where, args = append(where, "supplier = ?"), append(args, f.Supplier)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	// A supplier sees its own ids and pages by them; operators the keys.
	key := "id"
	if f.Supplier != "" {
		key = "supplier_order_id"
	}
	if f.After != "" {
		where, args = append(where, key+" > ?"), append(args, f.After)
	}
	if f.Search != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.Search) + "%"
		where = append(where, `(id = ? OR supplier_order_id = ? OR card_number = ? OR chip_uid = ? OR `+s.d.ilike("holder_names")+`)`)
		args = append(args, f.Search, f.Search, f.Search, strings.ToUpper(f.Search), like)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	return s.orders(ctx, clause+" ORDER BY "+key+" LIMIT ?", append(args, f.Limit)...)
}

// Events returns an order's audit trail, oldest first.
func (s *Store) Events(ctx context.Context, id string) ([]order.Event, error) {
	return collect(ctx, s, func(row scanner) (order.Event, error) {
		var e order.Event
		var at sql.NullInt64
		err := row.Scan(&at, &e.State, &e.Actor, &e.Note)
		e.At = fromMS(at)
		return e, err
	}, `SELECT at, state, actor, note FROM events WHERE order_id = ? ORDER BY id`, id)
}

// Approvals returns the approvals recorded for an order.
func (s *Store) Approvals(ctx context.Context, id string) ([]order.Approval, error) {
	return approvalsOf(ctx, s, id)
}

func approvalsOf(ctx context.Context, q querier, id string) ([]order.Approval, error) {
	return collect(ctx, q, func(row scanner) (order.Approval, error) {
		var a order.Approval
		var at sql.NullInt64
		err := row.Scan(&a.Kind, &a.Method, &at)
		a.At = fromMS(at)
		return a, err
	}, `SELECT kind, method, at FROM approvals WHERE order_id = ? ORDER BY at`, id)
}

// CountByState returns how many orders are in each state.
func (s *Store) CountByState(ctx context.Context) (map[order.State]int, error) {
	rows, err := s.query(ctx, `SELECT state, count(*) FROM orders GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[order.State]int{}
	for rows.Next() {
		var st order.State
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// Cancel withdraws an order that has not reached the chip yet.
func (s *Store) Cancel(ctx context.Context, id, supplier, actor, note string) (*order.Record, error) {
	return s.operatorMove(ctx, id, supplier, order.State.Cancellable, order.Cancelled, actor, note, func(tx *txn, o string) error {
		return s.enqueueNotice(ctx, tx, o, order.NoticeCancelled, map[string]any{"note": note})
	})
}

// operatorMove changes state outside a worker's lease (cancel, overrides,
// retries); the lease is dropped so a worker holding one loses its claim.
func (s *Store) operatorMove(ctx context.Context, id, supplier string, may func(order.State) bool, to order.State, actor, note string,
	also func(tx *txn, id string) error) (*order.Record, error) {
	err := s.tx(ctx, func(tx *txn) error {
		st, err := stateOf(ctx, tx, id, supplier)
		if err != nil {
			return err
		}
		if !may(st) {
			return fmt.Errorf("%w: the order is %s", ErrState, st)
		}
		now := ms(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`,
			to, now, id); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, id, now, to, actor, note); err != nil {
			return err
		}
		if also != nil {
			return also(tx, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// ReplacePhoto stores a new photo for an order and sends it through the photo
// stage again: the orderer's answer to "att åtgärda".
func (s *Store) ReplacePhoto(ctx context.Context, id, supplier string, photo []byte, actor string) (*order.Record, error) {
	err := s.tx(ctx, func(tx *txn) error {
		st, err := stateOf(ctx, tx, id, supplier)
		if err != nil {
			return err
		}
		if !st.PhotoReplaceable() {
			return fmt.Errorf("%w: the order is %s; a photo can be replaced only before production starts", ErrState, st)
		}
		if err := putBlob(ctx, tx, id, "photo", photo); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE order_id = ? AND kind IN ('portrait', 'chip_jpeg', 'face_pdf', 'face_png')`, id); err != nil {
			return err
		}
		next := st
		if st == order.NeedsFix {
			next = order.Queued
		}
		now := ms(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, reasons = '[]', photo_override = NULL,
			lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`, next, now, id); err != nil {
			return err
		}
		return addEvent(ctx, tx, id, now, next, actor, "new photo uploaded")
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// OverridePhoto records an operator's verdict on a photo. "pass" sends a
// needs_fix order on to production; "fail" sends a queued or ready order back.
func (s *Store) OverridePhoto(ctx context.Context, id, verdict, actor, reason string, reasons []order.Reason) (*order.Record, error) {
	from, to := order.State.PhotoPassable, order.Queued
	if verdict == "fail" {
		from, to = order.State.PhotoRefusable, order.NeedsFix
	} else if verdict != "pass" {
		return nil, fmt.Errorf("%w: verdict must be pass or fail", ErrState)
	}
	note := "photo verdict overridden to " + verdict + ": " + reason
	return s.operatorMove(ctx, id, "", from, to, actor, note, func(tx *txn, id string) error {
		rs := []order.Reason{}
		if verdict == "fail" {
			rs = reasons
		}
		b, err := json.Marshal(rs)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET photo_override = ?, reasons = ? WHERE id = ?`, verdict, string(b), id); err != nil {
			return err
		}
		if verdict == "fail" {
			return s.enqueueNotice(ctx, tx, id, order.NoticeNeedsFix, map[string]any{"reasons": rs})
		}
		return nil
	})
}

// Retry sends a failed order back to the queue (operator).
func (s *Store) Retry(ctx context.Context, id, actor, note string) (*order.Record, error) {
	return s.operatorMove(ctx, id, "", order.State.Retryable, order.Queued, actor, "retry: "+note, func(tx *txn, id string) error {
		_, err := tx.ExecContext(ctx, `UPDATE orders SET blanks_spoiled = 0, reasons = '[]', lane = NULL WHERE id = ?`, id)
		return err
	})
}
