package order

import (
	"slices"
	"time"
)

// State is where an order is in its life (docs/design.md §3).
type State string

const (
	Received         State = "received"
	AwaitingApproval State = "awaiting_approval"
	Queued           State = "queued"
	Imaging          State = "imaging"
	NeedsFix         State = "needs_fix"
	Ready            State = "ready"
	Encoding         State = "encoding"
	Printing         State = "printing"
	Produced         State = "produced"
	Shipped          State = "shipped"
	Failed           State = "failed"
	Cancelled        State = "cancelled"
)

// States lists every state in lifecycle order.
var States = []State{Received, AwaitingApproval, Queued, Imaging, NeedsFix, Ready, Encoding, Printing, Produced, Shipped, Failed, Cancelled}

// ValidState reports whether s names a state.
func ValidState(s string) bool { return slices.Contains(States, State(s)) }

// The states each action outside the pipeline may start from: the one rule
// the store enforces and the API and the pages offer.

// Cancellable reports whether an order in s can still be withdrawn, by its
// supplier or an operator: until the chip is touched.
func (s State) Cancellable() bool {
	switch s {
	case Received, AwaitingApproval, Queued, Imaging, NeedsFix, Ready:
		return true
	}
	return false
}

// InDevice reports whether an order in s is at the card reader or the
// printer: past cancelling, an operator can only stop it by spoiling its
// blank.
func (s State) InDevice() bool { return s == Encoding || s == Printing }

// Retryable reports whether an order in s may be sent back to the queue.
func (s State) Retryable() bool { return s == Failed }

// Reproducible reports whether the card of an order in s may be spoiled and
// made again: produced, not yet shipped.
func (s State) Reproducible() bool { return s == Produced }

// PhotoReplaceable reports whether the orderer may send a new photo: until
// production starts.
func (s State) PhotoReplaceable() bool { return s == NeedsFix || s == Queued || s == AwaitingApproval }

// PhotoPassable reports whether an operator may accept a photo the checks
// refused.
func (s State) PhotoPassable() bool { return s == NeedsFix }

// PhotoRefusable reports whether an operator may still refuse the photo:
// until the chip is written.
func (s State) PhotoRefusable() bool { return s == Queued || s == Ready }

// ExpressWindow is the promise for express pick-up after holder approval.
const ExpressWindow = 2 * time.Hour

// Approved decides whether an order may be produced: the holder must have
// approved it, and a trade organisation too where the company requires it.
// It returns the holder's (earliest) approval, which starts the express
// window, and, when the order may not be produced yet, the approval that is
// missing.
func Approved(approvals []Approval, tradeOrgRequired bool) (holderAt time.Time, missing string) {
	trade := false
	for _, a := range approvals {
		switch a.Kind {
		case KindHolder:
			if holderAt.IsZero() || a.At.Before(holderAt) {
				holderAt = a.At
			}
		case KindTradeOrg:
			trade = true
		}
	}
	switch {
	case holderAt.IsZero():
		return holderAt, "holder approval"
	case tradeOrgRequired && !trade:
		return holderAt, "trade organisation approval"
	}
	return holderAt, ""
}

// Reason is why a photo was refused, in words for the orderer.
type Reason struct {
	Code      string `json:"code"`
	MessageEN string `json:"message_en"`
	MessageSV string `json:"message_sv"`
}

// Event is one line of an order's audit trail.
type Event struct {
	At    time.Time `json:"at"`
	State State     `json:"state"`
	Actor string    `json:"actor"`
	Note  string    `json:"note"`
}

// Notice types: what a supplier is told about its orders (a webhook's
// Station-Event-Type and the "type" of its body).
const (
	NoticeNeedsFix    = "order.needs_fix"
	NoticeProduced    = "order.produced"
	NoticeFailed      = "order.failed"
	NoticeCancelled   = "order.cancelled"
	NoticeShipped     = "order.shipped"
	NoticeCardSpoiled = "order.card_spoiled"
	NoticeRevoked     = "order.revoked"
)
