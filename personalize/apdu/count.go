package apdu

import (
	"context"
	"sync/atomic"
)

// CountingCard wraps a Card and counts the APDUs and bytes that cross it.
type CountingCard struct {
	Card
	apdus, sent, received atomic.Int64
}

// Count wraps card in a counter.
func Count(card Card) *CountingCard { return &CountingCard{Card: card} }

// Transmit forwards to the wrapped card and counts.
func (c *CountingCard) Transmit(ctx context.Context, apdu []byte) ([]byte, error) {
	c.apdus.Add(1)
	c.sent.Add(int64(len(apdu)))
	out, err := c.Card.Transmit(ctx, apdu)
	c.received.Add(int64(len(out)))
	return out, err
}

// APDUs is the number of command APDUs sent so far.
func (c *CountingCard) APDUs() int64 { return c.apdus.Load() }

// Bytes returns the bytes sent to and received from the card so far.
func (c *CountingCard) Bytes() (sent, received int64) { return c.sent.Load(), c.received.Load() }

// Reset zeroes the counters.
func (c *CountingCard) Reset() {
	c.apdus.Store(0)
	c.sent.Store(0)
	c.received.Store(0)
}
