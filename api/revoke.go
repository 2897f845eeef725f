package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/order"
	"id06/personalize"
	"id06/queue"
)

// Revocations revokes cards and serves the issuing CA's certificate and CRL.
type Revocations interface {
	Revoke(ctx context.Context, id, supplier, actor string, reason personalize.Reason) (*queue.CardRevocation, error)
	CRL(ctx context.Context) ([]byte, time.Time, error)
	CACertificate() []byte
}

// pkiRoutes serve the CA certificate and its CRL to relying parties (door
// readers, IT systems, `station verify`) without a token: both are public,
// and the card certificates name these URLs.
func (a *API) pkiRoutes(r chi.Router) {
	r.Get("/ca.crt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(a.revocations.CACertificate())
	})
	r.Get("/ca.crl", func(w http.ResponseWriter, r *http.Request) {
		der, issued, err := a.revocations.CRL(r.Context())
		if err != nil {
			a.log.Error("CRL not issued", "err", err)
			http.Error(w, "the CRL cannot be issued now; try again", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		// Revalidate every time: a revocation issues a new CRL at once.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Last-Modified", issued.UTC().Format(http.TimeFormat))
		w.Write(der)
	})
}

// revocationView is a revoked card in an order's JSON.
type revocationView struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// decodeRevoke reads {"reason": …}, one of personalize.Reasons.
func (a *API) decodeRevoke(w http.ResponseWriter, r *http.Request) (personalize.Reason, error) {
	var req struct {
		Reason string `json:"reason"`
	}
	var names []string
	for _, reason := range personalize.Reasons() {
		names = append(names, string(reason))
	}
	if err := a.decodeOps(w, r, &req, `{"reason": "`+strings.Join(names, "|")+`"}`); err != nil {
		return "", err
	}
	if !slices.Contains(personalize.Reasons(), personalize.Reason(req.Reason)) {
		return "", &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the card cannot be revoked without a reason",
			Fields: []order.FieldError{{Path: "reason", Message: "must be one of " + strings.Join(names, ", ")}}}
	}
	return personalize.Reason(req.Reason), nil
}

// revoke puts the card of order id on the CRL and answers with the order.
func (a *API) revoke(w http.ResponseWriter, r *http.Request, id, supplier, actor string, reason personalize.Reason) error {
	_, err := a.revocations.Revoke(r.Context(), id, supplier, actor, reason)
	switch {
	case errors.Is(err, queue.ErrRevoked):
		return &apiError{Status: http.StatusConflict, Code: "already_revoked", Message: err.Error()}
	case errors.Is(err, queue.ErrState):
		return &apiError{Status: http.StatusConflict, Code: "wrong_state", Message: err.Error()}
	case errors.Is(err, queue.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such order"}
	case err != nil:
		return err
	}
	a.changed()
	o, err := a.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return a.writeOrder(w, r, http.StatusOK, o)
}

// postRevoke is POST /v1/orders/{id}/revoke for the supplier's own orders.
func (a *API) postRevoke(w http.ResponseWriter, r *http.Request) error {
	own, err := a.ownOrder(r)
	if err != nil {
		return err
	}
	reason, err := a.decodeRevoke(w, r)
	if err != nil {
		return err
	}
	supplier := supplierOf(r.Context())
	return a.revoke(w, r, own.ID, supplier, "supplier:"+supplier, reason)
}

// opsRevoke is POST /v1/ops/orders/{id}/revoke for any supplier's order.
func (a *API) opsRevoke(w http.ResponseWriter, r *http.Request) error {
	reason, err := a.decodeRevoke(w, r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	if err := a.revoke(w, r, id, "", opsActor(r), reason); err != nil {
		return err
	}
	a.audit(r.Context(), opsActor(r), "revoke", "order "+id+": "+string(reason))
	return nil
}
