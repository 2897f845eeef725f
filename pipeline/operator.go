package pipeline

import (
	"context"
	"slices"
	"strings"

	"id06/imaging"
	"id06/order"
)

// PhotoVerdict is an operator's verdict on a photo, overriding the checks.
type PhotoVerdict struct {
	Verdict string // "pass" sends a refused photo on; "fail" sends the order back to the orderer
	Code    string // with fail: the photo reason code the orderer is told
	Reason  string // why, for the order's timeline
}

// Check returns what is wrong with the verdict as an *order.ValidationError
// naming each field, or nil.
func (v PhotoVerdict) Check() error {
	var fields []order.FieldError
	if v.Verdict != "pass" && v.Verdict != "fail" {
		fields = append(fields, order.FieldError{Path: "verdict", Message: "must be pass or fail"})
	}
	if r := strings.TrimSpace(v.Reason); r == "" || len(r) > 500 {
		fields = append(fields, order.FieldError{Path: "reason", Message: "give the reason for the override (1 to 500 characters)"})
	}
	if v.Verdict == "fail" && !slices.Contains(imaging.Codes(), v.Code) {
		fields = append(fields, order.FieldError{Path: "code", Message: "a fail verdict needs one of the photo reason codes: " + strings.Join(imaging.Codes(), ", ")})
	}
	if len(fields) > 0 {
		return &order.ValidationError{Subject: "photo verdict", Fields: fields}
	}
	return nil
}

// Overrider records a photo verdict.
type Overrider interface {
	OverridePhoto(ctx context.Context, id, verdict, actor, reason string, reasons []order.Reason) (*order.Record, error)
}

// OverridePhoto applies an operator's photo verdict. The operator page, the
// operator API and `station photo override` all come here.
func OverridePhoto(ctx context.Context, s Overrider, id string, v PhotoVerdict, actor string) (*order.Record, error) {
	if err := v.Check(); err != nil {
		return nil, err
	}
	var reasons []order.Reason
	if v.Verdict == "fail" {
		reasons = []order.Reason{imaging.ReasonFor(v.Code)}
	}
	return s.OverridePhoto(ctx, id, v.Verdict, actor, strings.TrimSpace(v.Reason), reasons)
}

// Reproduce records a produced card as spoiled for an operator (a smudged
// print, a card dropped on the floor) and makes a new one.
func (p *Pipeline) Reproduce(ctx context.Context, id, actor, reason string) (*order.Record, error) {
	o, err := p.store.Reproduce(ctx, id, actor, reason)
	if err != nil {
		return nil, err
	}
	p.metrics.Spoiled(o.Lane)
	p.Wake()
	return o, nil
}

// SpoilAndFail stops an order at the reader or printer for an operator: its
// blank is retired with the card number and the order fails.
func (p *Pipeline) SpoilAndFail(ctx context.Context, id, actor, reason string) (*order.Record, error) {
	o, err := p.store.SpoilAndFail(ctx, id, actor, "stopped by an operator: "+reason)
	if err != nil {
		return nil, err
	}
	p.metrics.Spoiled(o.Lane)
	// The lane holding the card sends it to the reject bin.
	p.poke(o.Lane)
	return o, nil
}
