// Package pipeline carries claimed orders through the stages: the photo
// check on several workers, then one worker per production lane that takes
// a card from blank to printed (feeding it under the lane's encoder,
// writing the chip, printing the face, ejecting it). A device fault pauses
// its lane alone, with the reason, until the device is ready again or an
// operator resumes the lane; the other lanes go on. An operator's pause of
// the whole station stops every lane from starting a new card and only an
// operator ends it.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"id06/imaging"
	"id06/lane"
	"id06/order"
	"id06/personalize"
	"id06/personalize/apdu"
	"id06/printer"
	"id06/queue"
)

// Config is what the pipeline is told by the station's configuration.
type Config struct {
	PhotoWorkers int           // concurrent photo stages
	Lease        time.Duration // how long a claim holds without being extended
	CardPrefix   string        // the supplier's two letters on card numbers
	MaxBlanks    int           // spoiled blanks before an order fails
	Issuer       string        // card supplier name on the card back
	// PrinterPatience is how long a printer that says it will be ready
	// again (busy, briefly unreachable) is retried before the station
	// pauses for an operator.
	PrinterPatience time.Duration
}

// Store is what the pipeline needs of the database: claims and the guarded
// transitions of a claimed order.
type Store interface {
	Claim(ctx context.Context, owner string, lease time.Duration, moves map[order.State]order.State) (*queue.Claim, error)
	ClaimLane(ctx context.Context, owner, lane string, lease time.Duration) (*queue.Claim, error)
	Get(ctx context.Context, id string) (*order.Record, error)
	Extend(ctx context.Context, c *queue.Claim, lease time.Duration) error
	Advance(ctx context.Context, c *queue.Claim, to order.State, note string) error
	Release(ctx context.Context, c *queue.Claim, to order.State, note string) error
	Rescue(ctx context.Context, all bool) (int, error)
	Blob(ctx context.Context, id, kind string) ([]byte, error)
	PutBlobs(ctx context.Context, c *queue.Claim, blobs map[string][]byte) error
	PhotoPassed(ctx context.Context, c *queue.Claim, blobs map[string][]byte, note string) error
	NeedsFixPhoto(ctx context.Context, c *queue.Claim, reasons []order.Reason) error
	AllocateCard(ctx context.Context, c *queue.Claim, prefix string) error
	RecordChip(ctx context.Context, c *queue.Claim, uid string) error
	RecordCert(ctx context.Context, c *queue.Claim, slot, serial string, notAfter time.Time) error
	SupersedeCerts(ctx context.Context, c *queue.Claim, keep []string) error
	SpoilBlank(ctx context.Context, c *queue.Claim, reason string, maxBlanks int) (failed bool, err error)
	Fail(ctx context.Context, c *queue.Claim, reason string) error
	FailSpoiled(ctx context.Context, c *queue.Claim, reason string) error
	Encoded(ctx context.Context, c *queue.Claim, certSerial, validUntil string, sealed []byte) error
	RecordPrint(ctx context.Context, c *queue.Claim, printerID, jobID string) error
	Produced(ctx context.Context, c *queue.Claim, note string) error
	Reproduce(ctx context.Context, id, actor, reason string) (*order.Record, error)
	SpoilAndFail(ctx context.Context, id, actor, reason string) (*order.Record, error)
	SpoilInHand(ctx context.Context, id, lane, actor, reason string) (*order.Record, error)
}

// Metrics is told how long stages take and what came of them, by lane
// ("" for the photo stage, which belongs to no lane).
type Metrics interface {
	Stage(stage, lane string, d time.Duration)
	Spoiled(lane string)
	Produced(lane string)
	ExpressMissed()
}

// The stages the pipeline drives, each as small as the pipeline needs it.
type (
	// PhotoChecker turns an uploaded photo into a verdict and a portrait.
	PhotoChecker func(photo []byte) *imaging.Result
	// ChipWriter writes and verifies the PIV data.
	ChipWriter interface {
		Personalize(ctx context.Context, card apdu.Card, d personalize.CardData, rec personalize.Record) (*personalize.Result, error)
	}
)

// Pipeline claims orders and carries them through the stages: photo checks
// on several workers, each lane's cards on the lane's own worker.
type Pipeline struct {
	store    Store
	cfg      Config
	log      *slog.Logger
	photo    PhotoChecker
	chip     ChipWriter
	lanes    []*lane.Lane
	template *printer.Template
	metrics  Metrics
	now      func() time.Time
	sleep    func(context.Context, time.Duration) // waits before a failed step is retried
	owner    string
	work     signal

	mu      sync.Mutex
	paused  bool
	message string // why an operator paused the station
	dbFault string // why the database does not answer; no claims until it does
	changed chan struct{}
}

// New wires the stages and the lanes.
func New(store Store, cfg Config, log *slog.Logger, photo PhotoChecker, chip ChipWriter, lanes []*lane.Lane,
	tmpl *printer.Template, m Metrics) *Pipeline {
	return &Pipeline{store: store, cfg: cfg, log: log, photo: photo, chip: chip, lanes: lanes,
		template: tmpl, metrics: m, now: time.Now, sleep: sleepCtx, owner: "worker-" + uuid.NewString()[:8],
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

// Pause is an operator stopping the whole station: no lane starts a new
// card until Resume. No device recovering ends it.
func (p *Pipeline) Pause(message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.message = true, message
	p.notify()
}

// Resume ends an operator's pause of the station.
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

// Paused reports whether the station is paused, by an operator or a
// database that does not answer, and why.
func (p *Pipeline) Paused() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dbFault != "" {
		return true, p.dbFault
	}
	return p.paused, p.message
}

// DatabaseFault pauses claims while the database does not answer (message
// non-empty) and lets them go on when it does again (""). The page and
// /readyz show it as a pause; an operator's resume does not end it.
func (p *Pipeline) DatabaseFault(message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dbFault == message {
		return
	}
	p.dbFault = message
	p.notify()
	if message == "" {
		p.Wake()
	}
}

func (p *Pipeline) waitUnpaused(ctx context.Context) error {
	for {
		p.mu.Lock()
		paused, ch := p.paused || p.dbFault != "", p.changed
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
// under: a graceful stop cancels ctx (no new work) but lets each lane's
// card finish; only cancelling cardCtx aborts them.
func (p *Pipeline) Run(ctx, cardCtx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < max(1, p.cfg.PhotoWorkers); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, func(context.Context) (bool, error) { return p.photoOnce(cardCtx) })
		}()
	}
	for _, l := range p.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, func(context.Context) (bool, error) {
				// A new card waits for the station and for the lane.
				if err := p.waitUnpaused(ctx); err != nil {
					return false, err
				}
				if err := l.WaitReady(ctx); err != nil {
					return false, err
				}
				return p.laneOnce(cardCtx, l)
			})
		}()
	}
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
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		woken := p.work.wait()
		worked, err := once(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Error("pipeline step failed", "err", err, "retry_in", nextBackoff(backoff))
			// A failure that lasts (a full disk) must not spin: wait longer
			// each time, whatever wakes come meanwhile.
			backoff = nextBackoff(backoff)
			p.sleep(ctx, backoff)
			continue
		}
		backoff = 0
		if worked {
			continue
		}
		select {
		case <-ctx.Done():
		case <-woken:
		}
	}
}

// nextBackoff is the wait after another failed step: 100 ms doubling to 30 s.
func nextBackoff(d time.Duration) time.Duration {
	return min(max(2*d, 100*time.Millisecond), 30*time.Second)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// rescueLoop frees expired leases every half lease and then wakes the
// workers, also when it freed none: that look picks up what other processes
// changed in the database (station photo override) without anyone polling.
func (p *Pipeline) rescueLoop(ctx context.Context) {
	every(ctx, p.cfg.Lease/2, func() {
		if n, err := p.store.Rescue(ctx, false); err != nil {
			p.log.Error("rescue expired leases", "err", err)
		} else if n > 0 {
			p.log.Warn("rescued expired leases", "orders", n)
		}
		p.Wake()
	})
}

// keepLease extends a claim's lease until stop is called.
func (p *Pipeline) keepLease(ctx context.Context, c *queue.Claim) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every(ctx, p.cfg.Lease/3, func() {
			if err := p.store.Extend(ctx, c, p.cfg.Lease); err != nil && ctx.Err() == nil {
				p.log.Warn("lease extension failed", "order", c.ID, "err", err)
			}
		})
	}()
	return func() { cancel(); <-done }
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// claim takes the most urgent order in one of the states moves starts
// from; nil when there is none.
func (p *Pipeline) claim(ctx context.Context, moves map[order.State]order.State) (*queue.Claim, error) {
	c, err := p.store.Claim(ctx, p.owner, p.cfg.Lease, moves)
	if errors.Is(err, queue.ErrNothingToClaim) {
		return nil, nil
	}
	return c, err
}
