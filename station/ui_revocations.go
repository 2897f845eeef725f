package station

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"id06/personalize"
)

// uiRevoke puts the certificates of an order's card on the CRL, with the
// reason the operator picked; the order's timeline and the audit log record
// who did it.
func (s *Server) uiRevoke(w http.ResponseWriter, r *http.Request) {
	reason := personalize.Reason(r.PostFormValue("reason"))
	if !slices.Contains(personalize.Reasons(), reason) {
		s.uiError(w, r, http.StatusUnprocessableEntity, "err_revoke_reason")
		return
	}
	s.orderAction(w, r, "revoked", func(ctx context.Context, id, actor string) error {
		rev, err := s.revoke(ctx, id, "", actor, reason)
		var ae *apiError
		if errors.As(err, &ae) {
			return uiStateError{ae.Message}
		}
		if err == nil {
			s.audit(ctx, actor, "revoke", "order "+id+" card "+rev.CardNumber+": "+string(reason))
		}
		return err
	})
}

// uiStateError is a refused action whose message the page shows as is.
type uiStateError struct{ msg string }

func (e uiStateError) Error() string { return e.msg }

// uiRevocations lists the cards whose certificates are on the CRL.
func (s *Server) uiRevocations(w http.ResponseWriter, r *http.Request) {
	cards, err := s.store.RevokedCards(r.Context(), 300)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "revocations", s.newPage(w, r, "nav_revocations", map[string]any{"Cards": cards}))
}
