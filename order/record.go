package order

import (
	"fmt"
	"time"
)

// Record is an order as the station keeps it: the supplier's document as
// accepted (Doc, without the photo and logo, which are stored apart), its
// state, and what production recorded on the way (card number, chip, lease).
type Record struct {
	ID               string // the station's key: events, files, card numbers, the operator page
	SupplierOrderID  string // the supplier's id, unique per supplier
	Supplier         string
	BodyHash         string
	Doc              []byte
	CardType         string
	Express          bool
	TradeOrgRequired bool
	State            State
	ApprovedAt       time.Time
	Deadline         time.Time
	ValidUntil       string
	CardNumber       string
	CardUUID         string
	ChipUID          string
	CertSerial       string
	SealedSecrets    []byte
	Reasons          []Reason
	PhotoOverride    string
	Attempt          int
	BlanksSpoiled    int
	LeaseOwner       string
	LeaseUntil       time.Time
	Station          string // the station that holds the order, or last worked it
	ShipmentID       string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	ProducedAt       time.Time
	Lane             string // the lane holding the card, then the one that made it
	PrintPrinter     string // the printer the card's print job was recorded on
	PrintJob         string // that print job, recorded before it was submitted
}

// Document reads the stored order document. It is the one way the station
// reads what it accepted: the pipeline to make the card, the pages to show
// it. A document that no longer decodes is an error, never an empty order.
func (r *Record) Document() (*Order, error) {
	o, err := Decode(r.Doc)
	if err != nil {
		return nil, fmt.Errorf("order %s: the stored document does not decode: %w", r.ID, err)
	}
	return o, nil
}
