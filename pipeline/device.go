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
	"time"

	"github.com/google/uuid"

	"id06/order"
	"id06/personalize"
	"id06/personalize/apdu"
	"id06/printer"
	"id06/queue"
)

var deviceMoves = map[order.State]order.State{order.Ready: order.Encoding, order.Encoding: order.Encoding, order.Printing: order.Printing}

// deviceOnce takes one order through encoding and printing.
func (p *Pipeline) deviceOnce(ctx context.Context) (bool, error) {
	c, err := p.claim(ctx, deviceMoves)
	if c == nil {
		return false, err
	}
	stop := p.keepLease(ctx, c)
	defer stop()
	p.holding(c.ID)
	defer p.holding("")
	log := p.log.With("order", c.ID)
	if c.State == order.Encoding {
		done, err := p.encode(ctx, c, log)
		if err != nil || !done {
			return true, err
		}
	}
	return true, p.print(ctx, c, log)
}

// encode writes the chip. It returns done=false when the order went back to
// the queue (a spoiled blank) or ended.
func (p *Pipeline) encode(ctx context.Context, c *queue.Claim, log *slog.Logger) (bool, error) {
	start := p.now()
	defer func() { p.metrics.Stage("encode", p.now().Sub(start)) }()
	o, err := order.Decode(c.Doc)
	if err != nil {
		return false, p.store.Fail(ctx, c, "stored order no longer decodes: "+err.Error())
	}
	if c.CardNumber == "" {
		if err := p.store.AllocateCard(ctx, c, p.cfg.CardPrefix); err != nil {
			return false, err
		}
	}
	validUntil := o.ValidUntilDate(p.now())
	if !validUntil.After(p.now()) {
		return false, p.store.Fail(ctx, c, "the requested validity ("+o.ValidUntil+") passed while the order waited; order again with a later valid_until")
	}
	if err := p.renderFace(ctx, c, o, validUntil); err != nil {
		return false, p.store.Fail(ctx, c, "card face: "+err.Error())
	}
	card, err := p.reader.Connect(ctx)
	if err != nil {
		p.readerFailed("Card reader: " + err.Error())
		return false, p.store.Release(ctx, c, order.Encoding, "reader not available: "+err.Error())
	}
	defer card.Close()
	if c.ChipUID != "" {
		uid, err := personalize.ReadUID(ctx, card)
		if err != nil {
			return false, p.spoil(ctx, c, card, "chip UID unreadable: "+err.Error())
		}
		if got := strings.ToUpper(hex.EncodeToString(uid)); got != c.ChipUID {
			// The blank this order was bound to left the encoder mid-write; it
			// may hold part of the data, so it is retired with its number.
			return false, p.spoil(ctx, c, nil, "blank "+c.ChipUID+" was lost mid-encoding; the reader now holds "+got)
		}
		log.Info("resuming the card in the encoder", "chip", c.ChipUID)
		if err := p.store.Advance(ctx, c, order.Encoding, "resuming chip "+c.ChipUID+" left half-written"); err != nil {
			return false, err
		}
	}
	facial, err := p.store.Blob(ctx, c.ID, "chip_jpeg")
	if err != nil {
		return false, fmt.Errorf("chip portrait: %w", err)
	}
	cardUUID, err := uuid.Parse(c.CardUUID)
	if err != nil {
		return false, fmt.Errorf("card uuid: %w", err)
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
	res, err := p.chip.Personalize(ctx, card, data, personalize.Record{UID: func(uid []byte) error {
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
		return false, err
	case errors.Is(err, personalize.ErrSpoiled) || errors.Is(err, personalize.ErrNotBlank):
		return false, p.spoil(ctx, c, card, err.Error())
	case errors.Is(err, personalize.ErrCardData):
		// Found before the card is touched; another blank would fare no
		// better, so the order fails instead of pausing the station.
		log.Warn("the chip cannot take this order's data; order failed", "err", err)
		return false, p.store.Fail(ctx, c, "the chip cannot take this order's data: "+err.Error())
	default:
		// A reader or transport fault says nothing about the blank: the order
		// keeps its card number and chip, and resumes on the same card once an
		// operator has looked at the encoder (a different card there is
		// detected by its UID and the lost blank retired).
		p.readerFailed("Card reader: " + err.Error() + " — check the card in the encoder, then resume")
		return false, p.store.Release(ctx, c, order.Encoding, "reader fault: "+err.Error())
	}
	p.mu.Lock()
	p.readerFault = ""
	p.mu.Unlock()
	log.Info("chip written and verified", "chip", c.ChipUID, "apdus", res.APDUs)
	// Certificates an interrupted run issued for this chip were replaced on
	// it with their keys: they go on the CRL.
	var keep []string
	for _, ic := range res.Certs {
		keep = append(keep, ic.Serial)
	}
	if err := p.durably(ctx, "replaced certificates revoked", func() error { return p.store.SupersedeCerts(ctx, c, keep) }); err != nil {
		return false, err
	}
	return true, p.durably(ctx, "chip written", func() error {
		return p.store.Encoded(ctx, c, res.CertSerial, validUntil.Format(time.DateOnly), res.SealedSecrets)
	})
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

// spoil retires the blank in hand and ejects it when the reader can.
func (p *Pipeline) spoil(ctx context.Context, c *queue.Claim, card apdu.Card, reason string) error {
	p.metrics.Spoiled()
	p.log.Warn("blank spoiled", "order", c.ID, "card_number", c.CardNumber, "reason", reason)
	if card != nil {
		p.eject(ctx)
	}
	failed, err := p.store.SpoilBlank(ctx, c, reason, p.cfg.MaxBlanks)
	if err == nil && !failed {
		p.Wake()
	}
	return err
}

func (p *Pipeline) eject(ctx context.Context) {
	if e, ok := p.reader.(personalize.Ejector); ok {
		if err := e.Eject(ctx); err != nil {
			p.log.Warn("eject failed", "err", err)
		}
	}
}

// renderFace lays out the card face for the claimed order's card number.
func (p *Pipeline) renderFace(ctx context.Context, c *queue.Claim, o *order.Order, validUntil time.Time) error {
	portraitPNG, err := p.store.Blob(ctx, c.ID, "portrait")
	if err != nil {
		return fmt.Errorf("portrait: %w", err)
	}
	portrait, _, err := image.Decode(bytes.NewReader(portraitPNG))
	if err != nil {
		return fmt.Errorf("portrait: %w", err)
	}
	logo, err := p.store.Blob(ctx, c.ID, "logo")
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		return fmt.Errorf("logo: %w", err)
	}
	face, err := Face(p.template, o, c.CardNumber, p.cfg.Issuer, validUntil, portrait, logo)
	if err != nil {
		return err
	}
	return p.store.PutBlobs(ctx, c, map[string][]byte{"face_pdf": face.PDF, "face_png": face.FrontPNG, "face_back_png": face.BackPNG})
}

// print sends the face to the printer and marks the order produced. A
// printer that will be ready by itself is retried for PrinterPatience; a
// fault an operator must clear (or one that outlasts the patience) pauses
// the station until the printer is ready again.
func (p *Pipeline) print(ctx context.Context, c *queue.Claim, log *slog.Logger) error {
	start := p.now()
	defer func() { p.metrics.Stage("print", p.now().Sub(start)) }()
	pdf, err := p.store.Blob(ctx, c.ID, "face_pdf")
	if err != nil {
		return fmt.Errorf("face pdf: %w", err)
	}
	job := printer.Job{ID: printer.JobID(c.ID, c.CardNumber), CardNumber: c.CardNumber, OrderID: c.ID, PDF: pdf}
	var waited time.Duration
	for tries := 0; ; tries++ {
		err := p.printer.Print(ctx, job)
		fault, isFault := printer.AsFault(err)
		switch {
		case isFault && fault.Retryable && waited < p.cfg.PrinterPatience:
			// Busy, or briefly unreachable: the printer says it will be
			// ready again, so the card waits without pausing the station.
			d := min(time.Second<<min(tries, 4), p.cfg.PrinterPatience-waited)
			log.Info("printer not ready; trying again", "code", fault.Code, "in", d)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
			waited += d
			continue
		case isFault:
			p.Pause("Printer: " + fault.Message)
			log.Warn("printer fault; station paused", "code", fault.Code)
			if err := p.waitPrinter(ctx); err != nil {
				return err
			}
			// An operator may have stopped the order during the fault.
			if err := p.store.Extend(ctx, c, p.cfg.Lease); err != nil {
				return err
			}
			waited, tries = 0, -1
			continue
		case errors.Is(err, printer.ErrRefused):
			// Retrying cannot help: the order fails now, and the encoded
			// blank leaves the encoder so the next order gets a fresh one.
			p.metrics.Spoiled()
			p.eject(ctx)
			log.Warn("printer refused the job; order failed", "card_number", c.CardNumber, "err", err)
			return p.store.FailSpoiled(ctx, c, "the printer refused the job: "+err.Error())
		case err != nil:
			return err
		}
		break
	}
	p.eject(ctx)
	if err := p.durably(ctx, "card printed", func() error { return p.store.Produced(ctx, c, "card "+c.CardNumber+" printed") }); err != nil {
		return err
	}
	p.metrics.Produced()
	if c.Express && p.now().After(c.Deadline) {
		p.metrics.ExpressMissed()
		log.Warn("express order produced after its deadline", "deadline", c.Deadline)
	}
	log.Info("card produced", "card_number", c.CardNumber)
	return nil
}

// waitPrinter polls the printer until it is ready again, then resumes.
func (p *Pipeline) waitPrinter(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if st := p.printer.Status(ctx); st.Ready {
			p.Resume()
			return nil
		}
	}
}
