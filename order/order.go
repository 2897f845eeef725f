// Package order is the domain of the station: the supplier's order (its
// JSON, docs/design.md §7, strict decoding, and every validation rule of docs/design.md §8,
// including the check digits of Swedish and foreign ID numbers), and the
// order's life at the station (lifecycle.go: its states and which actions
// each state allows, the approval rule, the reasons, events and notices a
// supplier is told; cardnumber.go: the card number and its check digit).
// The database, the pipeline, the API and the pages all use these types.
//
// Messages never contain the value of a personal field (personnummer, ID
// number, names): they may end up in logs. They name the field and say what to
// fix.
package order

import (
	"fmt"
	"strings"
	"time"
)

// Order is exactly the JSON of docs/design.md §7; fields beyond these are refused.
type Order struct {
	ID         string     `json:"id"`
	CardType   string     `json:"card_type"`
	Express    bool       `json:"express"`
	Holder     Holder     `json:"holder"`
	Company    Company    `json:"company"`
	ValidUntil string     `json:"valid_until,omitempty"` // YYYY-MM-DD
	Photo      []byte     `json:"photo"`                 // base64 in JSON
	Delivery   Delivery   `json:"delivery"`
	Approvals  []Approval `json:"approvals"`
}

// Holder is the person the card is made for.
type Holder struct {
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	PrintName   string `json:"print_name"`
	Nationality string `json:"nationality"`
	BirthDate   string `json:"birth_date"` // YYYY-MM-DD
	IDNumber    string `json:"id_number"`
	Email       string `json:"email"`
	Phone       string `json:"phone"`
}

// Company is the holder's employer, printed on the card.
type Company struct {
	Name                     string `json:"name"`
	OrgNumber                string `json:"org_number"`
	Logo                     []byte `json:"logo"` // base64 in JSON; optional
	ColorLogo                bool   `json:"color_logo"`
	TradeOrgApprovalRequired bool   `json:"trade_org_approval_required"`
}

// Delivery is where the finished card is sent.
type Delivery struct {
	Name       string `json:"name"`
	Street     string `json:"street"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	Country    string `json:"country"`
	CostCenter string `json:"cost_center"`
	Department string `json:"department"`
}

// Approval kinds and methods accepted in Approval.
const (
	KindHolder   = "holder"
	KindTradeOrg = "trade_org"

	MethodBankID       = "bankid"
	MethodEID          = "eid"
	MethodPassportScan = "passport_scan"
)

// Card types accepted in Order.CardType.
const (
	CardID06      = "id06"
	CardVisitor   = "visitor"
	CardTemporary = "temporary"
)

// Approval records that the holder (or a trade organisation) approved the order.
type Approval struct {
	Kind   string    `json:"kind"`   // holder | trade_org
	Method string    `json:"method"` // bankid | eid | passport_scan
	At     time.Time `json:"at"`     // RFC 3339
}

// FieldError names one problem: Path is the JSON path of the field, like
// "holder.id_number" or "approvals[0].method"; it is empty when the problem
// concerns the body as a whole (not JSON, not an object).
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ValidationError lists everything the sender must fix. The HTTP API answers
// it with 422 and the Fields as they are.
type ValidationError struct {
	// Subject is what was checked, "order" or "approval"; empty means "order".
	Subject string
	Fields  []FieldError
}

func (e *ValidationError) Error() string {
	subject := e.Subject
	if subject == "" {
		subject = "order"
	}
	noun := "problems"
	if len(e.Fields) == 1 {
		noun = "problem"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the %s has %d %s: ", subject, len(e.Fields), noun)
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		if f.Path != "" {
			b.WriteString(f.Path)
			b.WriteString(": ")
		}
		b.WriteString(f.Message)
	}
	return b.String()
}

// HasHolderApproval reports whether the holder has approved the order. Without
// it the order is valid but waits in awaiting_approval.
func (o *Order) HasHolderApproval() bool { return o.hasApproval(KindHolder) }

// HasTradeOrgApproval reports whether a trade organisation has approved the order.
func (o *Order) HasTradeOrgApproval() bool { return o.hasApproval(KindTradeOrg) }

func (o *Order) hasApproval(kind string) bool {
	for _, a := range o.Approvals {
		if a.Kind == kind {
			return true
		}
	}
	return false
}

// HolderName is the holder's name as the card prints it, or the full name
// when no print name was given.
func (o *Order) HolderName() string {
	if o.Holder.PrintName != "" {
		return o.Holder.PrintName
	}
	return strings.TrimSpace(o.Holder.FirstName + " " + o.Holder.LastName)
}

// HolderNames are the names an operator may search the order by: the
// print name and the full name.
func (o *Order) HolderNames() []string {
	return []string{o.Holder.PrintName, strings.TrimSpace(o.Holder.FirstName + " " + o.Holder.LastName)}
}

// ReadyForProduction reports whether every approval the order needs is
// present (see Approved).
func (o *Order) ReadyForProduction() bool {
	_, missing := Approved(o.Approvals, o.Company.TradeOrgApprovalRequired)
	return missing == ""
}

// MaxValidityYears is the longest validity of an ID06 card (docs/design.md §1).
const MaxValidityYears = 5

// ValidUntilDate is the card's expiry for a card produced on productionDay:
// valid_until when given, else (and at most) 5 years from productionDay. The
// result is midnight of that date in productionDay's location. An order whose
// valid_until lies before productionDay yields a date before it; the caller
// must not produce such a card.
func (o *Order) ValidUntilDate(productionDay time.Time) time.Time {
	day := dateOf(productionDay)
	latest := addYears(day, MaxValidityYears)
	if o.ValidUntil == "" {
		return latest
	}
	d, err := time.ParseInLocation(dateLayout, o.ValidUntil, day.Location())
	if err != nil || d.After(latest) {
		return latest
	}
	return d
}

const dateLayout = "2006-01-02"

// dateOf is midnight of t's calendar day in t's location.
func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// addYears adds n years to a date; 29 February becomes 28 February rather than
// 1 March, so that "at most 5 years" is never exceeded.
func addYears(day time.Time, n int) time.Time {
	out := day.AddDate(n, 0, 0)
	if out.Day() != day.Day() {
		out = out.AddDate(0, 0, -out.Day())
	}
	return out
}
