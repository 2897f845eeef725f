package ui

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"id06/order"
	"id06/personalize"
	"id06/queue"
)

// Revocations puts a card's certificates on the CRL.
type Revocations interface {
	Revoke(ctx context.Context, id, supplier, actor string, reason personalize.Reason) (*queue.CardRevocation, error)
}

// revoke puts the certificates of an order's card on the CRL with the
// reason the operator picked; the order's timeline and the audit log say
// who did it.
func (u *UI) revoke(ctx context.Context, _ *http.Request, id, actor, reason string) (*order.Record, error) {
	if !slices.Contains(personalize.Reasons(), personalize.Reason(reason)) {
		var names []string
		for _, r := range personalize.Reasons() {
			names = append(names, string(r))
		}
		return nil, &order.ValidationError{Subject: "revocation", Fields: []order.FieldError{{Path: "reason", Message: "must be one of " + strings.Join(names, ", ")}}}
	}
	rev, err := u.revocations.Revoke(ctx, id, "", actor, personalize.Reason(reason))
	if err != nil {
		return nil, err
	}
	u.audit(ctx, actor, "revoke", "order "+id+" card "+rev.CardNumber+": "+reason)
	return u.store.Get(ctx, id)
}

// uiRevocations lists the cards whose certificates are on the CRL.
func (u *UI) uiRevocations(w http.ResponseWriter, r *http.Request) {
	cards, err := u.store.RevokedCards(r.Context(), 300)
	u.show(w, r, err, "revocations", "nav_revocations", map[string]any{"Cards": cards})
}
