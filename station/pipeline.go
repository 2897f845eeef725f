package station

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

	"id06/imaging"
	"id06/order"
	"id06/personalize"
	"id06/personalize/apdu"
	"id06/printer"
	"id06/queue"
)

// The stages the pipeline drives, each as small as the pipeline needs it.
type (
	// PhotoChecker turns an uploaded photo into a verdict and a portrait.
	PhotoChecker func(photo []byte) *imaging.Result
	// CardReader hands out the card in the encoder.
	CardReader interface {
		Name() string
		Connect(ctx context.Context) (apdu.Card, error)
	}
	// ChipWriter writes and verifies the PIV data.
	ChipWriter interface {
		Personalize(ctx context.Context, card apdu.Card, d personalize.CardData, rec personalize.Record) (*personalize.Result, error)
	}
	// CardPrinter prints a card face.
	CardPrinter interface {
		Print(ctx context.Context, job printer.Job) error
		Status(ctx context.Context) printer.Status
	}
)

// Pipeline claims orders and carries them through the stages. Photo checks
// run on several workers; the reader and printer are one machine, so one
// device worker takes a card from blank to printed.
type Pipeline struct {
	store    *queue.Store
	cfg      Config
	log      *slog.Logger
	photo    PhotoChecker
	reader   CardReader
	chip     ChipWriter
	printer  CardPrinter
	template *printer.Template
	metrics  *Metrics
	now      func() time.Time
	owner    string
	work     signal

	mu          sync.Mutex
	paused      bool
	message     string // why the station is paused, for the operator
	readerFault string // the last reader error, until a card is written again
	changed     chan struct{}
}

// NewPipeline wires the stages.
func NewPipeline(store *queue.Store, cfg Config, log *slog.Logger, photo PhotoChecker, reader CardReader, chip ChipWriter,
	prn CardPrinter, tmpl *printer.Template, m *Metrics) *Pipeline {
	return &Pipeline{store: store, cfg: cfg, log: log, photo: photo, reader: reader, chip: chip, printer: prn,
		template: tmpl, metrics: m, now: time.Now, owner: "worker-" + uuid.NewString()[:8],
		work: signal{ch: make(chan struct{})}, changed: make(chan struct{})}
}

// signal wakes every goroutine waiting on it at once. A waiter takes the
// channel before it looks for work, so a wake that comes while it looks is
// not lost, and a woken waiter never re-arms it: idle workers sleep.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel that closes at the next wake.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// Wake tells idle workers that there may be work.
func (p *Pipeline) Wake() { p.work.wake() }

// Pause stops the device worker from starting new cards.
func (p *Pipeline) Pause(message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.message = true, message
	p.notify()
}

// Resume lets the device worker continue.
func (p *Pipeline) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.message = false, ""
	p.notify()
	p.Wake()
}

func (p *Pipeline) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// readerFailed pauses the station for a reader error and remembers it for
// the reader's health.
func (p *Pipeline) readerFailed(message string) {
	p.mu.Lock()
	p.readerFault = message
	p.mu.Unlock()
	p.Pause(message)
}

// ReaderUp reports whether the last use of the reader worked.
func (p *Pipeline) ReaderUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readerFault == ""
}

// Paused reports whether the station is paused and why.
func (p *Pipeline) Paused() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused, p.message
}

func (p *Pipeline) waitUnpaused(ctx context.Context) error {
	for {
		p.mu.Lock()
		paused, ch := p.paused, p.changed
		p.mu.Unlock()
		if !paused {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Run works until ctx ends. cardCtx is the context a card in hand runs
// under: a graceful stop cancels ctx (no new work) but lets the card finish;
// only cancelling cardCtx aborts it.
func (p *Pipeline) Run(ctx, cardCtx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < max(1, p.cfg.PhotoWorkers); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, func(context.Context) (bool, error) { return p.photoOnce(cardCtx) })
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.loop(ctx, func(context.Context) (bool, error) {
			if err := p.waitUnpaused(ctx); err != nil {
				return false, err
			}
			return p.deviceOnce(cardCtx)
		})
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.rescueLoop(ctx)
	}()
	wg.Wait()
}

// loop runs once until it finds nothing to do, then sleeps until a Wake
// (new work, a state change, the rescue loop's periodic look) or ctx ends.
func (p *Pipeline) loop(ctx context.Context, once func(context.Context) (bool, error)) {
	for ctx.Err() == nil {
		woken := p.work.wait()
		worked, err := once(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Error("pipeline step failed", "err", err)
		}
		if worked {
			continue
		}
		select {
		case <-ctx.Done():
		case <-woken:
		}
	}
}

// rescueLoop frees expired leases every half lease and then wakes the
// workers, also when it freed none: that look picks up what other processes
// changed in the database (station photo override) without anyone polling.
func (p *Pipeline) rescueLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.Lease / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := p.store.Rescue(ctx, false); err != nil {
				p.log.Error("rescue expired leases", "err", err)
			} else if n > 0 {
				p.log.Warn("rescued expired leases", "orders", n)
			}
			p.Wake()
		}
	}
}

// keepLease extends a job's lease until stop is called.
func (p *Pipeline) keepLease(ctx context.Context, j *queue.Job) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(p.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := p.store.Extend(ctx, j, p.cfg.Lease); err != nil && ctx.Err() == nil {
					p.log.Warn("lease extension failed", "order", j.ID, "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

var photoMoves = map[queue.State]queue.State{queue.Queued: queue.Imaging, queue.Imaging: queue.Imaging}

// photoOnce checks one order's photo and crops its portrait.
func (p *Pipeline) photoOnce(ctx context.Context) (bool, error) {
	j, err := p.store.Claim(ctx, p.owner, p.cfg.Lease, photoMoves)
	if errors.Is(err, queue.ErrNoJob) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	start := p.now()
	defer func() { p.metrics.observeStage("photo", p.now().Sub(start)) }()
	photo, err := p.store.Blob(ctx, j.ID, "photo")
	if err != nil {
		return true, fmt.Errorf("order %s: photo: %w", j.ID, err)
	}
	res := p.photo(photo)
	pass := res.Verdict == "pass"
	note := "photo passed the checks"
	if j.PhotoOverride == "pass" && res.Portrait != nil {
		pass, note = true, "photo accepted by an operator's override"
	}
	if !pass {
		reasons := make([]queue.Reason, len(res.Reasons))
		for i, r := range res.Reasons {
			reasons[i] = queue.Reason(r)
		}
		p.log.Info("photo refused", "order", j.ID, "reasons", len(reasons))
		return true, p.store.NeedsFixPhoto(ctx, j, reasons)
	}
	portrait, err := imaging.EncodePNG(res.Portrait, 300)
	if err != nil {
		return true, p.store.Fail(ctx, j, "portrait could not be encoded: "+err.Error())
	}
	err = p.store.PhotoPassed(ctx, j, map[string][]byte{"portrait": portrait, "chip_jpeg": res.ChipJPEG}, note)
	if err == nil {
		p.Wake()
	}
	return true, err
}

var deviceMoves = map[queue.State]queue.State{queue.Ready: queue.Encoding, queue.Encoding: queue.Encoding, queue.Printing: queue.Printing}

// deviceOnce takes one order through encoding and printing.
func (p *Pipeline) deviceOnce(ctx context.Context) (bool, error) {
	j, err := p.store.Claim(ctx, p.owner, p.cfg.Lease, deviceMoves)
	if errors.Is(err, queue.ErrNoJob) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	stop := p.keepLease(ctx, j)
	defer stop()
	log := p.log.With("order", j.ID)
	if j.State == queue.Encoding {
		done, err := p.encode(ctx, j, log)
		if err != nil || !done {
			return true, err
		}
	}
	return true, p.print(ctx, j, log)
}

// encode writes the chip. It returns done=false when the order went back to
// the queue (a spoiled blank) or ended.
func (p *Pipeline) encode(ctx context.Context, j *queue.Job, log *slog.Logger) (bool, error) {
	start := p.now()
	defer func() { p.metrics.observeStage("encode", p.now().Sub(start)) }()
	o, err := order.Decode(j.Doc)
	if err != nil {
		return false, p.store.Fail(ctx, j, "stored order no longer decodes: "+err.Error())
	}
	if j.CardNumber == "" {
		if err := p.store.AllocateCard(ctx, j, p.cfg.CardPrefix); err != nil {
			return false, err
		}
	}
	validUntil := o.ValidUntilDate(p.now())
	if !validUntil.After(p.now()) {
		return false, p.store.Fail(ctx, j, "the requested validity ("+o.ValidUntil+") passed while the order waited; order again with a later valid_until")
	}
	if err := p.renderFace(ctx, j, o, validUntil); err != nil {
		return false, p.store.Fail(ctx, j, "card face: "+err.Error())
	}
	card, err := p.reader.Connect(ctx)
	if err != nil {
		p.readerFailed("Card reader: " + err.Error())
		return false, p.store.Release(ctx, j, queue.Encoding, "reader not available: "+err.Error())
	}
	defer card.Close()
	if j.ChipUID != "" {
		uid, err := personalize.ReadUID(ctx, card)
		if err != nil {
			return false, p.spoil(ctx, j, card, "chip UID unreadable: "+err.Error())
		}
		if got := strings.ToUpper(hex.EncodeToString(uid)); got != j.ChipUID {
			// The blank this order was bound to left the encoder mid-write; it
			// may hold part of the data, so it is retired with its number.
			return false, p.spoil(ctx, j, nil, "blank "+j.ChipUID+" was lost mid-encoding; the reader now holds "+got)
		}
		log.Info("resuming the card in the encoder", "chip", j.ChipUID)
		if err := p.store.Advance(ctx, j, queue.Encoding, "resuming chip "+j.ChipUID+" left half-written"); err != nil {
			return false, err
		}
	}
	facial, err := p.store.Blob(ctx, j.ID, "chip_jpeg")
	if err != nil {
		return false, fmt.Errorf("chip portrait: %w", err)
	}
	cardUUID, err := uuid.Parse(j.CardUUID)
	if err != nil {
		return false, fmt.Errorf("card uuid: %w", err)
	}
	data := personalize.CardData{
		CardNumber: j.CardNumber, CardUUID: [16]byte(cardUUID),
		HolderName: o.Holder.FirstName + " " + o.Holder.LastName, PrintName: o.Holder.PrintName,
		Company: o.Company.Name, OrgNumber: o.Company.OrgNumber, ValidUntil: validUntil, FacialJPEG: facial,
	}
	if j.ChipUID != "" {
		data.ExpectedUID, _ = hex.DecodeString(j.ChipUID)
	}
	res, err := p.chip.Personalize(ctx, card, data, personalize.Record{UID: func(uid []byte) error {
		u := strings.ToUpper(hex.EncodeToString(uid))
		if j.ChipUID == u {
			return nil
		}
		return p.store.RecordChip(ctx, j, u)
	}, Cert: func(c personalize.IssuedCert) error {
		return p.store.RecordCert(ctx, j, c.Slot, c.Serial, c.NotAfter)
	}})
	switch {
	case err == nil:
	case errors.Is(err, queue.ErrLeaseLost) || ctx.Err() != nil:
		return false, err
	case errors.Is(err, personalize.ErrSpoiled) || errors.Is(err, personalize.ErrNotBlank):
		return false, p.spoil(ctx, j, card, err.Error())
	case errors.Is(err, personalize.ErrCardData):
		// Found before the card is touched; another blank would fare no
		// better, so the order fails instead of pausing the station.
		log.Warn("the chip cannot take this order's data; order failed", "err", err)
		return false, p.store.Fail(ctx, j, "the chip cannot take this order's data: "+err.Error())
	default:
		// A reader or transport fault says nothing about the blank: the order
		// keeps its card number and chip, and resumes on the same card once an
		// operator has looked at the encoder (a different card there is
		// detected by its UID and the lost blank retired).
		p.readerFailed("Card reader: " + err.Error() + " — check the card in the encoder, then resume")
		return false, p.store.Release(ctx, j, queue.Encoding, "reader fault: "+err.Error())
	}
	p.mu.Lock()
	p.readerFault = ""
	p.mu.Unlock()
	log.Info("chip written and verified", "chip", j.ChipUID, "apdus", res.APDUs)
	// Certificates an interrupted run issued for this chip were replaced on
	// it with their keys: they go on the CRL.
	var keep []string
	for _, c := range res.Certs {
		keep = append(keep, c.Serial)
	}
	if err := p.store.SupersedeCerts(ctx, j, keep); err != nil {
		return false, err
	}
	return true, p.store.Encoded(ctx, j, res.CertSerial, validUntil.Format(time.DateOnly), res.SealedSecrets)
}

// spoil retires the blank in hand and ejects it when the reader can.
func (p *Pipeline) spoil(ctx context.Context, j *queue.Job, card apdu.Card, reason string) error {
	p.metrics.spoiled.Inc()
	p.log.Warn("blank spoiled", "order", j.ID, "card_number", j.CardNumber, "reason", reason)
	if card != nil {
		p.eject(ctx)
	}
	failed, err := p.store.SpoilBlank(ctx, j, reason, p.cfg.MaxBlanks)
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

// renderFace lays out the card face for the job's card number.
func (p *Pipeline) renderFace(ctx context.Context, j *queue.Job, o *order.Order, validUntil time.Time) error {
	portraitPNG, err := p.store.Blob(ctx, j.ID, "portrait")
	if err != nil {
		return fmt.Errorf("portrait: %w", err)
	}
	portrait, _, err := image.Decode(bytes.NewReader(portraitPNG))
	if err != nil {
		return fmt.Errorf("portrait: %w", err)
	}
	var logo image.Image
	if raw, err := p.store.Blob(ctx, j.ID, "logo"); err == nil {
		if logo, err = imaging.PrepareLogo(raw, o.Company.ColorLogo); err != nil {
			return fmt.Errorf("logo: %w", err)
		}
	}
	face, err := printer.Render(p.template, printer.Card{
		CardType: o.CardType, PrintName: o.Holder.PrintName, Company: o.Company.Name, OrgNumber: o.Company.OrgNumber,
		CardNumber: j.CardNumber, Issuer: p.cfg.Issuer, ValidUntil: validUntil,
		Portrait: portrait, Logo: logo, ColorLogo: o.Company.ColorLogo,
	})
	if err != nil {
		return err
	}
	return p.store.PutBlobs(ctx, j, map[string][]byte{"face_pdf": face.PDF, "face_png": face.FrontPNG, "face_back_png": face.BackPNG})
}

// print sends the face to the printer, waiting out printer faults with the
// station paused, and marks the order produced.
func (p *Pipeline) print(ctx context.Context, j *queue.Job, log *slog.Logger) error {
	start := p.now()
	defer func() { p.metrics.observeStage("print", p.now().Sub(start)) }()
	pdf, err := p.store.Blob(ctx, j.ID, "face_pdf")
	if err != nil {
		return fmt.Errorf("face pdf: %w", err)
	}
	job := printer.Job{ID: printer.JobID(j.ID, j.CardNumber), CardNumber: j.CardNumber, OrderID: j.ID, PDF: pdf}
	for {
		err := p.printer.Print(ctx, job)
		var fault *printer.Fault
		if errors.As(err, &fault) {
			p.Pause("Printer: " + fault.Message)
			log.Warn("printer fault; station paused", "code", fault.Code)
			if err := p.waitPrinter(ctx); err != nil {
				return err
			}
			// An operator may have stopped the order during the fault.
			if err := p.store.Extend(ctx, j, p.cfg.Lease); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, printer.ErrRefused) {
			// Retrying cannot help: the order fails now, and the encoded
			// blank leaves the encoder so the next order gets a fresh one.
			p.metrics.spoiled.Inc()
			p.eject(ctx)
			log.Warn("printer refused the job; order failed", "card_number", j.CardNumber, "err", err)
			return p.store.FailSpoiled(ctx, j, "the printer refused the job: "+err.Error())
		}
		if err != nil {
			return err
		}
		break
	}
	p.eject(ctx)
	if err := p.store.Produced(ctx, j, "card "+j.CardNumber+" printed"); err != nil {
		return err
	}
	p.metrics.produced.Inc()
	if j.Express && p.now().After(j.Deadline) {
		p.metrics.expressMissed.Inc()
		log.Warn("express order produced after its deadline", "deadline", j.Deadline)
	}
	log.Info("card produced", "card_number", j.CardNumber)
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
