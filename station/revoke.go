package station

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/order"
	"id06/personalize"
	"id06/queue"
)

// crlRefresh is how old the served CRL may grow before it is issued again:
// half its validity, so a fetched CRL is current for at least 12 hours.
const crlRefresh = personalize.CRLValidity / 2

// crlCache keeps the CA's CRL, issued from the revocations in the database
// again whenever a certificate was revoked since, and at least every
// crlRefresh.
type crlCache struct {
	mu     sync.Mutex
	der    []byte
	mark   string
	issued time.Time
}

// currentCRL returns the CRL to serve, issuing a new one when needed.
func (s *Server) currentCRL(ctx context.Context) ([]byte, time.Time, error) {
	c := &s.crl
	c.mu.Lock()
	defer c.mu.Unlock()
	mark, err := s.store.RevocationsMark(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := s.now()
	if c.der != nil && mark == c.mark && now.Sub(c.issued) < crlRefresh && !now.Before(c.issued) {
		return c.der, c.issued, nil
	}
	entries, err := s.store.CRLEntries(ctx, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	revoked := make([]personalize.Revoked, len(entries))
	for i, e := range entries {
		revoked[i] = personalize.Revoked{Serial: e.Serial, At: e.At, Reason: personalize.Reason(e.Reason)}
	}
	number, err := s.store.NextCRLNumber(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	der, err := s.chip.IssueCRL(revoked, number, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	c.der, c.mark, c.issued = der, mark, now
	s.log.Info("CRL issued", "number", number, "revoked", len(revoked))
	return der, now, nil
}

// crlSource is the station's own CRL as a personalize.CRLSource (QA page).
func (s *Server) crlSource(ctx context.Context, _ *x509.Certificate) ([]byte, error) {
	der, _, err := s.currentCRL(ctx)
	return der, err
}

// pkiRoutes serve the CA certificate and its CRL to relying parties (door
// readers, IT systems, `station verify`), without authentication: both are
// public, and the certificates name these URLs.
func (s *Server) pkiRoutes(r chi.Router) {
	r.Get("/ca.crt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(s.chip.CACertificateDER())
	})
	r.Get("/ca.crl", func(w http.ResponseWriter, r *http.Request) {
		der, issued, err := s.currentCRL(r.Context())
		if err != nil {
			s.log.Error("CRL not issued", "err", err)
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

// revocationView is a revoked card in the API.
type revocationView struct {
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	Serials []string  `json:"certificate_serials,omitempty"`
}

// decodeRevoke reads {"reason": …}, one of personalize.Reasons.
func (s *Server) decodeRevoke(w http.ResponseWriter, r *http.Request) (personalize.Reason, error) {
	var req struct {
		Reason string `json:"reason"`
	}
	var names []string
	for _, reason := range personalize.Reasons() {
		names = append(names, string(reason))
	}
	shape := `{"reason": "` + strings.Join(names, "|") + `"}`
	if err := s.decodeOps(w, r, &req, shape); err != nil {
		return "", err
	}
	if !slices.Contains(personalize.Reasons(), personalize.Reason(req.Reason)) {
		return "", &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the card cannot be revoked without a reason",
			Fields: []order.FieldError{{Path: "reason", Message: "must be one of " + strings.Join(names, ", ")}}}
	}
	return personalize.Reason(req.Reason), nil
}

// revoke puts the card's certificates on the CRL (issued again at once).
func (s *Server) revoke(ctx context.Context, id, supplier, actor string, reason personalize.Reason) (*queue.CardRevocation, error) {
	rev, created, err := s.store.Revoke(ctx, id, supplier, actor, string(reason))
	switch {
	case errors.Is(err, queue.ErrRevoked):
		return nil, &apiError{Status: http.StatusConflict, Code: "already_revoked", Message: err.Error()}
	case errors.Is(err, queue.ErrState):
		return nil, &apiError{Status: http.StatusConflict, Code: "wrong_state", Message: err.Error()}
	case err != nil:
		return nil, err
	}
	if created {
		s.log.Info("card revoked", "order", id, "card_number", rev.CardNumber, "reason", reason, "actor", actor)
		if _, _, err := s.currentCRL(ctx); err != nil {
			// Served requests issue it again; the revocation itself is stored.
			s.log.Error("CRL not issued after a revocation", "err", err)
		}
		s.broadcast()
	}
	return rev, nil
}

// postRevoke is POST /v1/orders/{id}/revoke for the supplier's own orders.
func (s *Server) postRevoke(w http.ResponseWriter, r *http.Request) error {
	own, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	reason, err := s.decodeRevoke(w, r)
	if err != nil {
		return err
	}
	supplier := supplierOf(r.Context())
	if _, err := s.revoke(r.Context(), own.ID, supplier, "supplier:"+supplier, reason); err != nil {
		return err
	}
	o, err := s.store.Get(r.Context(), own.ID)
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusOK, o)
}

// opsRevoke is POST /v1/ops/orders/{id}/revoke for any order.
func (s *Server) opsRevoke(w http.ResponseWriter, r *http.Request) error {
	reason, err := s.decodeRevoke(w, r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	rev, err := s.revoke(r.Context(), id, "", opsActor(r), reason)
	if errors.Is(err, queue.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such order"}
	}
	if err != nil {
		return err
	}
	s.audit(r.Context(), opsActor(r), "revoke", "order "+id+" card "+rev.CardNumber+": "+string(reason))
	o, err := s.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusOK, o)
}
