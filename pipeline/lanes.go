package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"id06/lane"
	"id06/order"
	"id06/queue"
)

// ErrNoLane is an operator action on a lane the station does not have.
var ErrNoLane = fmt.Errorf("no such lane: %w", queue.ErrNotFound)

// ErrSpoilReason: spoiling a lane's card needs the operator's reason.
var ErrSpoilReason = errors.New("say why the card is spoiled (1 to 500 characters)")

// OperateLane is an operator's pause, resume, drain or spoil of a lane, the
// one rule the operator page and the operator API share. by names the
// operator in a pause without a reason. It answers the reason it acted on,
// for the audit. A resume whose device still fails leaves the lane paused
// with the device's reason and is no error: the lane panel shows why.
func (p *Pipeline) OperateLane(ctx context.Context, name, action, actor, by, reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch action {
	case "pause":
		if reason == "" {
			reason = "Paused by " + by
		}
		return reason, p.PauseLane(name, reason)
	case "resume":
		if err := p.ResumeLane(ctx, name); err != nil && !errors.Is(err, queue.ErrNotFound) {
			p.log.Warn("lane resumed; a device still fails", "lane", name, "err", err)
		} else if err != nil {
			return reason, err
		}
		return reason, nil
	case "drain":
		return reason, p.DrainLane(name)
	case "spoil":
		if reason == "" || len(reason) > 500 {
			return reason, ErrSpoilReason
		}
		_, err := p.SpoilLane(ctx, name, actor, reason)
		return reason, err
	}
	return reason, fmt.Errorf("%w: no lane action %q", queue.ErrNotFound, action)
}

// Lanes reads every lane for the operator page, the API and the metrics.
func (p *Pipeline) Lanes(ctx context.Context) []lane.Snapshot {
	out := make([]lane.Snapshot, len(p.lanes))
	for i, l := range p.lanes {
		out[i] = l.Snapshot(ctx)
	}
	return out
}

// Lane returns the lane of that name.
func (p *Pipeline) Lane(name string) (*lane.Lane, error) {
	for _, l := range p.lanes {
		if l.Config.Name == name {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoLane, name)
}

// poke wakes the lane holding a card an operator changed.
func (p *Pipeline) poke(name string) {
	if l, err := p.Lane(name); err == nil {
		l.Poke()
	}
}

// PauseLane is an operator stopping one lane; its card in hand stays.
func (p *Pipeline) PauseLane(name, reason string) error {
	l, err := p.Lane(name)
	if err != nil {
		return err
	}
	l.Pause(reason)
	return nil
}

// ResumeLane is an operator resuming one lane (which also tells its
// devices: a simulated printer counts it as a refill).
func (p *Pipeline) ResumeLane(ctx context.Context, name string) error {
	l, err := p.Lane(name)
	if err != nil {
		return err
	}
	err = l.Resume(ctx)
	p.Wake()
	return err
}

// DrainLane lets a lane finish its card and take no new one.
func (p *Pipeline) DrainLane(name string) error {
	l, err := p.Lane(name)
	if err != nil {
		return err
	}
	l.Drain()
	return nil
}

// SpoilLane is an operator spoiling the card in a paused lane's hand (a
// jam it cannot get past): the card number is retired, the card goes to
// the reject bin when the lane can send it there, and the order back to
// ready for another lane.
func (p *Pipeline) SpoilLane(ctx context.Context, name, actor, reason string) (*order.Record, error) {
	l, err := p.Lane(name)
	if err != nil {
		return nil, err
	}
	s := l.Snapshot(ctx)
	if s.Card == nil {
		return nil, fmt.Errorf("%w: lane %s holds no card", queue.ErrState, name)
	}
	if s.State != lane.Paused {
		return nil, fmt.Errorf("%w: pause lane %s first, so that its card stops moving", queue.ErrState, name)
	}
	o, err := p.store.SpoilInHand(ctx, s.Card.Order, name, actor, reason)
	if err != nil {
		return nil, err
	}
	p.metrics.Spoiled(name)
	l.Poke()
	p.Wake()
	return o, nil
}
