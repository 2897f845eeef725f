package lane

import (
	"context"
	"errors"
	"sync"
	"time"
)

// State is what a lane is doing.
type State string

// The lane states (DESIGN §9).
const (
	Idle    State = "idle"    // ready for the next card
	Working State = "working" // a card in hand
	Paused  State = "paused"  // a fault or an operator stopped it; Reason says why
	Off     State = "off"     // drained: it takes no new card until resumed
)

// Lane is one lane at run time: its devices, the card in its hand and why
// it may not take the next one. A device fault pauses the lane until the
// device reports ready again or an operator resumes it; an operator's
// pause only ends with an operator's resume.
type Lane struct {
	Config  Config
	Devices *Devices
	now     func() time.Time

	mu        sync.Mutex
	opPause   string                     // the operator's reason; "" = not paused by an operator
	fault     string                     // the device fault that pauses the lane; "" = none
	faulty    string                     // the device at fault: reader, printer or transport
	ready     func(context.Context) bool // reports the faulty device ready again; nil: an operator must resume
	lastFault string
	faultAt   time.Time
	draining  bool
	card      Card
	produced  []time.Time // cards out in the last hour
	spoiled   int
	changed   chan struct{}
}

// Card is the card in a lane's hand.
type Card struct {
	Order      string `json:"order"`
	CardNumber string `json:"card_number,omitempty"`
	Step       string `json:"step"` // feeding, encoding, printing, ejecting
}

// New makes a lane of its configuration and opened devices.
func New(c Config, d *Devices) *Lane {
	return &Lane{Config: c, Devices: d, now: time.Now, changed: make(chan struct{})}
}

// notify wakes everyone waiting for a change (caller holds mu).
func (l *Lane) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Changed is closed at the lane's next change.
func (l *Lane) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Pause is an operator stopping the lane; the card in hand stays.
func (l *Lane) Pause(reason string) {
	if reason == "" {
		reason = "Paused by an operator"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opPause = reason
	l.notify()
}

// Fault pauses the lane for a fault of a device (reader, printer or
// transport) until ready reports the device ready again (see Recheck), or
// an operator resumes the lane; nil ready leaves it to the operator.
func (l *Lane) Fault(device, reason string, ready func(context.Context) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fault, l.faulty, l.ready, l.lastFault, l.faultAt = reason, device, ready, reason, l.now()
	l.notify()
}

// Recheck asks a faulty device whether it is ready again, and ends the
// fault if it is. It never ends an operator's pause.
func (l *Lane) Recheck(ctx context.Context) {
	l.mu.Lock()
	ready := l.ready
	l.mu.Unlock()
	if ready == nil || !ready(ctx) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fault, l.faulty, l.ready = "", "", nil
	l.notify()
}

// Poke wakes whoever waits on the lane, to look again (at the database:
// an operator changed the card in its hand).
func (l *Lane) Poke() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify()
}

// Running reports whether the lane may go on with the card in hand: no
// fault and no operator's pause.
func (l *Lane) Running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opPause == "" && l.fault == ""
}

// Drain lets the card in hand finish and takes no new one: the lane goes
// off until resumed.
func (l *Lane) Drain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draining = true
	l.notify()
}

// Resume is an operator's resume: it ends the operator's pause, the drain
// and the fault, and tells the devices the operator acted (a simulated
// printer counts it as a refill and frees a jammed card; a command channel
// is set up again). A device that still fails keeps the lane paused.
func (l *Lane) Resume(ctx context.Context) error {
	var errs []error
	if l.Devices != nil {
		seen := map[any]bool{}
		for _, d := range []any{l.Devices.Printer, l.Devices.Transport} {
			if r, ok := d.(interface{ Recover(context.Context) error }); ok && !seen[d] {
				seen[d] = true
				errs = append(errs, r.Recover(ctx))
			}
		}
	}
	err := errors.Join(errs...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opPause, l.draining = "", false
	l.fault, l.faulty, l.ready = "", "", nil
	if err != nil {
		l.fault, l.faulty, l.lastFault, l.faultAt = err.Error(), "transport", err.Error(), l.now()
	}
	l.notify()
	return err
}

// WaitReady blocks until the lane may take a new card: not paused, not
// draining. A faulty device is asked every second whether it is ready again.
func (l *Lane) WaitReady(ctx context.Context) error {
	for {
		l.Recheck(ctx)
		l.mu.Lock()
		ready, ch := l.opPause == "" && l.fault == "" && !l.draining, l.changed
		l.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// Take puts a card in the lane's hand.
func (l *Lane) Take(c Card) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.card = c
	l.notify()
}

// Step records where the card in hand is.
func (l *Lane) Step(step, cardNumber string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.card.Step = step
	if cardNumber != "" {
		l.card.CardNumber = cardNumber
	}
	l.notify()
}

// Done empties the lane's hand: produced counts a card out, spoiled a
// blank lost.
func (l *Lane) Done(produced, spoiled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.card = Card{}
	now := l.now()
	if produced {
		l.produced = append(l.recent(now), now)
	}
	if spoiled {
		l.spoiled++
	}
	l.notify()
}

// recent drops the cards older than an hour (caller holds mu).
func (l *Lane) recent(now time.Time) []time.Time {
	i := 0
	for i < len(l.produced) && now.Sub(l.produced[i]) >= time.Hour {
		i++
	}
	return l.produced[i:]
}

// Snapshot is a lane as the operator page and the API show it.
type Snapshot struct {
	Name          string    `json:"name"`
	Reader        string    `json:"reader"`
	Printer       string    `json:"printer"`
	Transport     string    `json:"transport"`
	State         State     `json:"state"`
	Reason        string    `json:"reason,omitempty"`
	Card          *Card     `json:"card,omitempty"`
	CardsThisHour int       `json:"cards_this_hour"`
	Spoiled       int       `json:"spoiled"`
	Blanks        int       `json:"blanks"`          // -1: the printer does not say
	Fault         string    `json:"fault,omitempty"` // the device at fault: reader, printer or transport
	LastFault     string    `json:"last_fault,omitempty"`
	LastFaultAt   time.Time `json:"last_fault_at,omitzero"`
}

// Snapshot reads the lane, and the blanks left from its transport.
func (l *Lane) Snapshot(ctx context.Context) Snapshot {
	blanks := -1
	if l.Devices != nil {
		blanks = l.Devices.Transport.TransportStatus(ctx).Blanks
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.Config
	s := Snapshot{Name: c.Name, Reader: c.Reader, Printer: c.Printer, Transport: c.Transport,
		CardsThisHour: len(l.recent(l.now())), Spoiled: l.spoiled, Blanks: blanks,
		LastFault: l.lastFault, LastFaultAt: l.faultAt}
	if l.card.Order != "" {
		card := l.card
		s.Card = &card
	}
	if l.fault != "" {
		s.Fault = l.faulty
	}
	switch {
	case l.opPause != "":
		s.State, s.Reason = Paused, l.opPause
	case l.fault != "":
		s.State, s.Reason = Paused, l.fault
	case s.Card != nil:
		s.State = Working
	case l.draining:
		s.State = Off
	default:
		s.State = Idle
	}
	return s
}
