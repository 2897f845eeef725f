package pipeline

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"id06/lane"
	"id06/order"
	"id06/personalize"
	"id06/printer"
	"id06/queue"
)

// laneOnce takes one card through a lane: the card already in the lane's
// hand (after a fault, a pause or a crash), else a new order on a new blank.
func (p *Pipeline) laneOnce(ctx context.Context, l *lane.Lane) (bool, error) {
	name := l.Config.Name
	c, err := p.store.ClaimLane(ctx, p.owner+"/"+name, name, p.cfg.Lease)
	if errors.Is(err, queue.ErrNothingToClaim) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	stop := p.keepLease(ctx, c)
	defer stop()
	log := p.log.With("order", c.ID, "lane", name)
	l.Take(lane.Card{Order: c.ID, CardNumber: c.CardNumber, Step: string(c.State)})
	produced, spoiled, err := p.card(ctx, l, c, log)
	if errors.Is(err, queue.ErrLeaseLost) {
		// An operator took the card out of the lane's hand meanwhile
		// (spoiled it, or stopped the order): it goes to the reject bin.
		spoiled = p.lostCard(ctx, l, c, log)
	}
	l.Done(produced, spoiled)
	return true, err
}

// card runs the card through encoding and printing. produced: the card is
// out; spoiled: its blank went to the reject bin.
func (p *Pipeline) card(ctx context.Context, l *lane.Lane, c *queue.Claim, log *slog.Logger) (produced, spoiled bool, err error) {
	var lay *printer.Layout
	if c.State == order.Encoding {
		var done, spoiled bool
		var err error
		if lay, done, spoiled, err = p.encode(ctx, l, c, log); err != nil || !done {
			return false, spoiled, err
		}
	}
	return p.print(ctx, l, c, lay, log)
}

// hold keeps the card in the lane's hand while the lane cannot go on: a
// device fault (reason, from device) pauses the lane until ready says the
// device is ready again (nil: until an operator resumes the lane); an
// operator's pause until the operator resumes. It returns ErrLeaseLost when
// an operator took the card meanwhile.
func (p *Pipeline) hold(ctx context.Context, l *lane.Lane, c *queue.Claim, device, reason string, ready func(context.Context) bool) error {
	if reason != "" {
		l.Fault(device, reason, ready)
		p.log.Warn("lane paused", "lane", l.Config.Name, "device", device, "reason", reason, "order", c.ID)
	}
	for {
		changed := l.Changed()
		if err := p.store.Extend(ctx, c, p.cfg.Lease); err != nil {
			return err
		}
		if l.Recheck(ctx); l.Running() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// checkpoint waits out an operator's pause of the lane between two steps.
func (p *Pipeline) checkpoint(ctx context.Context, l *lane.Lane, c *queue.Claim, step string) error {
	if !l.Running() {
		if err := p.hold(ctx, l, c, "", "", nil); err != nil {
			return err
		}
	}
	l.Step(step, c.CardNumber)
	return nil
}

// printerReady and transportReady tell hold when a device fault cleared.
func printerReady(l *lane.Lane) func(context.Context) bool {
	return func(ctx context.Context) bool { return l.Devices.Printer.Status(ctx).Ready }
}

func transportReady(l *lane.Lane) func(context.Context) bool {
	return func(ctx context.Context) bool { return l.Devices.Transport.TransportStatus(ctx).Fault == nil }
}

// encode writes the chip of the card in the lane's hand, feeding a blank
// first unless a chip is already bound to the order. done=false: the order
// left the lane (its blank spoiled, or the order failed).
func (p *Pipeline) encode(ctx context.Context, l *lane.Lane, c *queue.Claim, log *slog.Logger) (lay *printer.Layout, done, spoiled bool, err error) {
	start := p.now()
	defer func() { p.metrics.Stage("encode", l.Config.Name, p.now().Sub(start)) }()
	o, err := c.Document()
	if err != nil {
		spoiled, err := p.failCard(ctx, l, c, err.Error(), log)
		return nil, false, spoiled, err
	}
	validUntil := o.ValidUntilDate(p.now())
	if !validUntil.After(p.now()) {
		spoiled, err := p.failCard(ctx, l, c, "the requested validity ("+o.ValidUntil+") passed while the order waited; order again with a later valid_until", log)
		return nil, false, spoiled, err
	}
	if c.ChipUID == "" {
		// No chip is bound yet: a blank goes under the encoder. (A transport
		// that already holds one, after a crash, keeps it.)
		if released, err := p.feed(ctx, l, c); err != nil || released {
			return nil, false, false, err
		}
	}
	if c.CardNumber == "" {
		if err := p.store.AllocateCard(ctx, c, p.cfg.CardPrefix); err != nil {
			return nil, false, false, err
		}
	}
	// The printer's PDF is drawn while the chip is written: the CPU work
	// overlaps the chip's I/O instead of holding up the lane.
	type laid struct {
		lay *printer.Layout
		err error
	}
	faced := make(chan laid, 1)
	go func() {
		lay, err := p.facePDF(ctx, c, o, validUntil)
		faced <- laid{lay, err}
	}()
	var face laid
	faceDone := false
	waitFace := func() laid {
		if !faceDone {
			face, faceDone = <-faced, true
		}
		return face
	}
	defer waitFace()
	if err := p.checkpoint(ctx, l, c, "encoding"); err != nil {
		return nil, false, false, err
	}
	for {
		res, spoiled, retry, err := p.writeChip(ctx, l, c, o, validUntil, log)
		if res != nil {
			f := waitFace()
			if fe := (faceError{}); errors.As(f.err, &fe) {
				spoiled, err := p.failCard(ctx, l, c, fe.Error(), log)
				return nil, false, spoiled, err
			} else if f.err != nil {
				// The store did not answer: the written chip stays in the
				// lane's hand and is taken up again.
				return nil, false, false, f.err
			}
			return f.lay, true, false, p.encoded(ctx, c, res, validUntil)
		}
		if !retry {
			return nil, false, spoiled, err
		}
		// A reader fault says nothing about the blank: the card stays in the
		// lane's hand with its number and chip, and the same chip is resumed
		// once an operator has looked at the encoder (a different card there
		// is detected by its UID and the lost blank retired).
		if err := p.hold(ctx, l, c, "reader", "Card reader: "+err.Error()+" — check the card in the encoder, then resume the lane", nil); err != nil {
			return nil, false, false, err
		}
	}
}

// encoded records the written chip: certificates an interrupted run issued
// for it were replaced on it with their keys and go on the CRL; the order
// moves on to printing.
func (p *Pipeline) encoded(ctx context.Context, c *queue.Claim, res *personalize.Result, validUntil time.Time) error {
	var keep []string
	for _, ic := range res.Certs {
		keep = append(keep, ic.Serial)
	}
	if err := p.durably(ctx, "replaced certificates revoked", func() error { return p.store.SupersedeCerts(ctx, c, keep) }); err != nil {
		return err
	}
	return p.durably(ctx, "chip written", func() error {
		return p.store.Encoded(ctx, c, res.CertSerial, validUntil.Format(time.DateOnly), res.SealedSecrets)
	})
}

// feed puts a blank under the lane's encoder. When the transport cannot
// (out of cards, a jam) the lane pauses; an order that has no card yet
// goes back to ready for another lane (released), one that has a number
// stays in the lane's hand until the transport is ready or an operator
// resumes the lane.
func (p *Pipeline) feed(ctx context.Context, l *lane.Lane, c *queue.Claim) (released bool, err error) {
	if err := p.checkpoint(ctx, l, c, "feeding"); err != nil {
		return false, err
	}
	for {
		err := l.Devices.Transport.Feed(ctx)
		if err == nil || ctx.Err() != nil {
			return false, ctx.Err()
		}
		ready := transportReady(l)
		if _, isFault := printer.AsFault(err); !isFault {
			ready = nil // the printer refused the command: an operator must look
		}
		reason := "Card transport: " + err.Error()
		if c.CardNumber == "" {
			// The order goes back to ready and leaves the lane's hand before
			// the lane shows its pause: a paused lane is never seen holding
			// an order it gave away.
			err := p.store.Release(ctx, c, order.Ready, fmt.Sprintf("lane %s cannot feed a blank (%s); back to ready for another lane", l.Config.Name, err))
			l.Done(false, false)
			l.Fault("transport", reason, ready)
			p.log.Warn("lane paused; its order goes to another lane", "lane", l.Config.Name, "reason", reason, "order", c.ID)
			p.Wake()
			return true, err
		}
		if err := p.hold(ctx, l, c, "transport", reason, ready); err != nil {
			return false, err
		}
	}
}

// failCard fails the order for a reason of its own. A written chip is
// retired with its card number and goes to the reject bin; an untouched
// blank stays under the encoder for the next card.
func (p *Pipeline) failCard(ctx context.Context, l *lane.Lane, c *queue.Claim, reason string, log *slog.Logger) (spoiled bool, err error) {
	log.Warn("order failed", "reason", reason)
	if c.ChipUID == "" {
		return false, p.store.Fail(ctx, c, reason)
	}
	p.reject(ctx, l, log)
	return true, p.store.FailSpoiled(ctx, c, reason)
}

// writeChip connects to the card in the lane's encoder and personalises it:
// res is the written chip. retry: a reader fault, to be tried again on the
// same card.
func (p *Pipeline) writeChip(ctx context.Context, l *lane.Lane, c *queue.Claim, o *order.Order, validUntil time.Time, log *slog.Logger) (res *personalize.Result, spoiled, retry bool, err error) {
	card, err := l.Devices.Reader.Connect(ctx)
	if err != nil {
		return nil, false, ctx.Err() == nil, err
	}
	defer card.Close()
	if c.ChipUID != "" {
		uid, err := personalize.ReadUID(ctx, card)
		if err != nil {
			return nil, true, false, p.spoil(ctx, l, c, "chip UID unreadable: "+err.Error(), log)
		}
		if got := strings.ToUpper(hex.EncodeToString(uid)); got != c.ChipUID {
			// The blank this order was bound to left the encoder mid-write; it
			// may hold part of the data, so it is retired with its number.
			return nil, true, false, p.spoil(ctx, l, c, "blank "+c.ChipUID+" was lost mid-encoding; the reader now holds "+got, log)
		}
		log.Info("resuming the card in the encoder", "chip", c.ChipUID)
		if err := p.store.Advance(ctx, c, order.Encoding, "resuming chip "+c.ChipUID+" left half-written"); err != nil {
			return nil, false, false, err
		}
	}
	facial, err := p.store.Blob(ctx, c.ID, "chip_jpeg")
	if err != nil {
		return nil, false, false, fmt.Errorf("chip portrait: %w", err)
	}
	cardUUID, err := uuid.Parse(c.CardUUID)
	if err != nil {
		return nil, false, false, fmt.Errorf("card uuid: %w", err)
	}
	data := personalize.CardData{
		CardNumber: c.CardNumber, CardUUID: [16]byte(cardUUID),
		HolderName: o.Holder.FirstName + " " + o.Holder.LastName, PrintName: o.Holder.PrintName,
		Company: o.Company.Name, OrgNumber: o.Company.OrgNumber, ValidUntil: validUntil, FacialJPEG: facial,
	}
	if c.ChipUID != "" {
		data.ExpectedUID, _ = hex.DecodeString(c.ChipUID)
	}
	var recordErr error // the database's answer, not the reader's
	res, err = p.chip.Personalize(ctx, card, data, personalize.Record{UID: func(uid []byte) error {
		u := strings.ToUpper(hex.EncodeToString(uid))
		if c.ChipUID == u {
			return nil
		}
		recordErr = p.durably(ctx, "chip bound", func() error { return p.store.RecordChip(ctx, c, u) })
		return recordErr
	}, Cert: func(ic personalize.IssuedCert) error {
		recordErr = p.durably(ctx, "certificate issued", func() error {
			return p.store.RecordCert(ctx, c, ic.Slot, ic.Serial, ic.NotAfter)
		})
		return recordErr
	}})
	switch {
	case err == nil:
	case recordErr != nil || errors.Is(err, queue.ErrLeaseLost) || ctx.Err() != nil:
		return nil, false, false, err
	case errors.Is(err, personalize.ErrSpoiled) || errors.Is(err, personalize.ErrNotBlank):
		return nil, true, false, p.spoil(ctx, l, c, err.Error(), log)
	case errors.Is(err, personalize.ErrCardData):
		// Found before the card is touched; another blank would fare no
		// better, so the order fails; the untouched blank stays for the next.
		spoiled, err := p.failCard(ctx, l, c, "the chip cannot take this order's data: "+err.Error(), log)
		return nil, spoiled, false, err
	default:
		return nil, false, true, err
	}
	log.Info("chip written and verified", "chip", c.ChipUID, "apdus", res.APDUs)
	return res, false, false, nil
}

// durably records what a device did and cannot undo (a chip bound or
// written, a card printed): while the database does not answer it tries
// again, for as long as the lease would have lasted, instead of leaving the
// order to be done a second time. A lost lease or a changed order is final.
func (p *Pipeline) durably(ctx context.Context, what string, write func() error) error {
	deadline := p.now().Add(p.cfg.Lease)
	for {
		err := write()
		if err == nil || errors.Is(err, queue.ErrLeaseLost) || errors.Is(err, queue.ErrState) || ctx.Err() != nil || p.now().After(deadline) {
			return err
		}
		p.log.Warn("recording failed; trying again", "what", what, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// spoil retires the blank in hand: it goes to the reject bin and the order
// back to ready for any lane (or fails past MaxBlanks).
func (p *Pipeline) spoil(ctx context.Context, l *lane.Lane, c *queue.Claim, reason string, log *slog.Logger) error {
	p.metrics.Spoiled(l.Config.Name)
	log.Warn("blank spoiled", "card_number", c.CardNumber, "reason", reason)
	p.reject(ctx, l, log)
	failed, err := p.store.SpoilBlank(ctx, c, reason, p.cfg.MaxBlanks)
	if err == nil && !failed {
		p.Wake()
	}
	return err
}

// reject sends the card in the lane to the reject bin.
func (p *Pipeline) reject(ctx context.Context, l *lane.Lane, log *slog.Logger) {
	if err := l.Devices.Transport.Reject(ctx); err != nil {
		log.Warn("the card could not be sent to the reject bin; take it out of the printer", "err", err)
	}
	p.clearSlot(ctx, l, log)
}

// clearSlot empties a simulated reader's slot: its card left with the
// transport.
func (p *Pipeline) clearSlot(ctx context.Context, l *lane.Lane, log *slog.Logger) {
	if e, ok := l.Devices.Reader.(personalize.Ejector); ok {
		if err := e.Eject(ctx); err != nil {
			log.Warn("eject failed", "err", err)
		}
	}
}

// lostCard handles a card an operator took out of the lane's hand while
// the lane held it: spoiled back to ready, or the order stopped. Either way
// the physical card goes to the reject bin. It reports whether it did.
func (p *Pipeline) lostCard(ctx context.Context, l *lane.Lane, c *queue.Claim, log *slog.Logger) bool {
	o, err := p.store.Get(ctx, c.ID)
	if err != nil || (o.Lane == l.Config.Name && o.State.InDevice()) {
		return false // still the lane's card (only its lease ran out): it is resumed
	}
	log.Warn("an operator took the card out of the lane; to the reject bin", "state", o.State)
	p.reject(ctx, l, log)
	return true
}

// faceError is what is wrong with the order's face itself (its portrait,
// logo or layout): another try cannot help, unlike a store that did not
// answer.
type faceError struct{ err error }

func (e faceError) Error() string { return "card face: " + e.err.Error() }
func (e faceError) Unwrap() error { return e.err }

// layFace lays out the card face for the claimed order's card number. Its
// database reads are retried like every record of the lane's work, so a
// database restart never spoils a written chip.
func (p *Pipeline) layFace(ctx context.Context, c *queue.Claim, o *order.Order, validUntil time.Time) (*printer.Layout, error) {
	var portraitPNG, logo []byte
	if err := p.durably(ctx, "portrait read", func() (err error) {
		portraitPNG, err = p.store.Blob(ctx, c.ID, "portrait")
		return err
	}); err != nil {
		return nil, fmt.Errorf("portrait: %w", err)
	}
	portrait, _, err := image.Decode(bytes.NewReader(portraitPNG))
	if err != nil {
		return nil, faceError{fmt.Errorf("portrait: %w", err)}
	}
	if err := p.durably(ctx, "logo read", func() (err error) {
		logo, err = p.store.Blob(ctx, c.ID, "logo")
		if errors.Is(err, queue.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("logo: %w", err)
	}
	lay, err := FaceLayout(p.template, o, c.CardNumber, p.cfg.Issuer, validUntil, portrait, logo)
	if err != nil {
		return nil, faceError{err}
	}
	return lay, nil
}

// facePDF lays out the face, draws the printer's PDF and stores it.
func (p *Pipeline) facePDF(ctx context.Context, c *queue.Claim, o *order.Order, validUntil time.Time) (*printer.Layout, error) {
	lay, err := p.layFace(ctx, c, o, validUntil)
	if err != nil {
		return nil, err
	}
	pdf, err := lay.PDF()
	if err != nil {
		return nil, faceError{err}
	}
	return lay, p.durably(ctx, "card face", func() error {
		return p.store.PutBlobs(ctx, c, map[string][]byte{"face_pdf": pdf})
	})
}

// previews draws the face's PNGs for the operator page and stores them; the
// card does not wait for them, so a failure is only logged. lay is the
// face as encode laid it out, or nil for a card taken up in printing.
func (p *Pipeline) previews(ctx context.Context, c *queue.Claim, lay *printer.Layout, log *slog.Logger) {
	err := func() error {
		if lay == nil {
			o, err := c.Document()
			if err != nil {
				return err
			}
			validUntil, err := time.Parse(time.DateOnly, c.ValidUntil)
			if err != nil {
				return fmt.Errorf("valid_until %q: %w", c.ValidUntil, err)
			}
			if lay, err = p.layFace(ctx, c, o, validUntil); err != nil {
				return err
			}
		}
		front, back, err := lay.Previews()
		if err != nil {
			return err
		}
		return p.durably(ctx, "card previews", func() error {
			return p.store.PutBlobs(ctx, c, map[string][]byte{"face_png": front, "face_back_png": back})
		})
	}()
	if err != nil && ctx.Err() == nil {
		log.Warn("the card face previews were not stored; the card is made all the same", "err", err)
	}
}

// print records the print job, then prints it once on the lane's printer
// (which is asked about the job first: after a crash it may hold or have
// printed it), ejects the card and marks the order produced. A printer that
// will be ready by itself is retried for PrinterPatience without pausing; a
// fault an operator must clear pauses the lane alone until the printer is
// ready again.
func (p *Pipeline) print(ctx context.Context, l *lane.Lane, c *queue.Claim, lay *printer.Layout, log *slog.Logger) (produced, spoiled bool, err error) {
	start := p.now()
	defer func() { p.metrics.Stage("print", l.Config.Name, p.now().Sub(start)) }()
	dev := l.Devices
	if err := p.checkpoint(ctx, l, c, "printing"); err != nil {
		return false, false, err
	}
	// The previews for people are drawn while the printer prints.
	drawn := make(chan struct{})
	go func() { defer close(drawn); p.previews(ctx, c, lay, log) }()
	waitDrawn := sync.OnceFunc(func() { <-drawn })
	defer waitDrawn()
	pdf, err := p.store.Blob(ctx, c.ID, "face_pdf")
	if err != nil {
		return false, false, fmt.Errorf("face pdf: %w", err)
	}
	job := printer.Job{ID: printer.JobID(c.ID, c.CardNumber), CardNumber: c.CardNumber, OrderID: c.ID, PDF: pdf}
	for c.PrintJob != "" && c.PrintPrinter != dev.PrinterID {
		// Only this printer can be asked; the card's job went to another.
		msg := fmt.Sprintf("The card's print job %s went to printer %s, but the lane now prints on %s: find the card, then spoil it or give the lane its printer back",
			c.PrintJob, c.PrintPrinter, dev.PrinterID)
		if err := p.hold(ctx, l, c, "printer", msg, nil); err != nil {
			return false, false, err
		}
	}
	if err := p.store.RecordPrint(ctx, c, dev.PrinterID, job.ID); err != nil {
		return false, false, err
	}
	var waited time.Duration
	for tries := 0; ; tries++ {
		err := printer.PrintOnce(ctx, dev.Printer, job)
		fault, isFault := printer.AsFault(err)
		switch {
		case isFault && fault.Retryable && waited < p.cfg.PrinterPatience:
			// Busy, or briefly unreachable: the printer says it will be
			// ready again, so the card waits without pausing the lane.
			d := min(time.Second<<min(tries, 4), p.cfg.PrinterPatience-waited)
			log.Info("printer not ready; trying again", "code", fault.Code, "in", d)
			select {
			case <-ctx.Done():
				return false, false, ctx.Err()
			case <-time.After(d):
			}
			waited += d
			continue
		case isFault:
			if err := p.hold(ctx, l, c, "printer", "Printer: "+fault.Message, printerReady(l)); err != nil {
				return false, false, err
			}
			waited, tries = 0, -1
			continue
		case errors.Is(err, printer.ErrRefused):
			// Retrying cannot help: the order fails now, and the encoded
			// blank leaves for the reject bin so the next order gets a fresh one.
			p.metrics.Spoiled(l.Config.Name)
			spoiled, err := p.failCard(ctx, l, c, "the printer refused the job: "+err.Error(), log)
			return false, spoiled, err
		case err != nil:
			return false, false, err
		}
		break
	}
	if err := p.checkpoint(ctx, l, c, "ejecting"); err != nil {
		return false, false, err
	}
	for {
		err := dev.Transport.Eject(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		if err := p.hold(ctx, l, c, "transport", "Card transport: "+err.Error(), nil); err != nil {
			return false, false, err
		}
	}
	p.clearSlot(ctx, l, log)
	waitDrawn() // stored while the order is still the lane's
	if err := p.durably(ctx, "card printed", func() error {
		return p.store.Produced(ctx, c, fmt.Sprintf("card %s printed on lane %s", c.CardNumber, l.Config.Name))
	}); err != nil {
		return false, false, err
	}
	p.metrics.Produced(l.Config.Name)
	if c.Express && p.now().After(c.Deadline) {
		p.metrics.ExpressMissed()
		log.Warn("express order produced after its deadline", "deadline", c.Deadline)
	}
	log.Info("card produced", "card_number", c.CardNumber)
	return true, false, nil
}
