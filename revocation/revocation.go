// Package revocation puts the certificates of a card on the issuing CA's
// CRL, and keeps the CRL the station serves: issued from the revocations in
// the database again whenever a certificate was revoked since, and at
// least every 12 hours, so a fetched CRL is current for at least 12 hours.
package revocation

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync"
	"time"

	"id06/personalize"
	"id06/queue"
)

// Store is what revocation needs of the database.
type Store interface {
	Revoke(ctx context.Context, id, supplier, actor, reason string) (*queue.CardRevocation, bool, error)
	RevocationsMark(ctx context.Context) (string, error)
	CRLEntries(ctx context.Context, now time.Time) ([]queue.Revocation, error)
	NextCRLNumber(ctx context.Context) (int64, error)
}

// CA signs the CRLs (the chip writer holds the issuing CA).
type CA interface {
	IssueCRL(revoked []personalize.Revoked, number int64, now time.Time) ([]byte, error)
	CACertificateDER() []byte
}

// refresh is how old the served CRL may grow before it is issued again:
// half its validity.
const refresh = personalize.CRLValidity / 2

// Service revokes cards and serves the CRL.
type Service struct {
	store Store
	ca    CA
	log   *slog.Logger
	now   func() time.Time

	mu     sync.Mutex
	der    []byte
	mark   string
	issued time.Time
}

// New makes the service.
func New(store Store, ca CA, log *slog.Logger) *Service {
	return &Service{store: store, ca: ca, log: log, now: time.Now}
}

// Revoke puts the certificates of the card of order id on the CRL (see
// queue.Store.Revoke; supplier "" = any supplier's order) and issues the
// CRL again at once. It returns queue.ErrNotFound, queue.ErrState or
// queue.ErrRevoked when the card cannot be revoked.
func (s *Service) Revoke(ctx context.Context, id, supplier, actor string, reason personalize.Reason) (*queue.CardRevocation, error) {
	rev, created, err := s.store.Revoke(ctx, id, supplier, actor, string(reason))
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("card revoked", "order", id, "card_number", rev.CardNumber, "reason", reason, "actor", actor)
		if _, _, err := s.CRL(ctx); err != nil {
			// The revocation is stored; the next request issues the CRL.
			s.log.Error("CRL not issued after a revocation", "err", err)
		}
	}
	return rev, nil
}

// CRL returns the DER CRL to serve and when it was issued, issuing a new
// one when a certificate was revoked since the last or it is 12 h old.
func (s *Service) CRL(ctx context.Context) ([]byte, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mark, err := s.store.RevocationsMark(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := s.now()
	if s.der != nil && mark == s.mark && now.Sub(s.issued) < refresh && !now.Before(s.issued) {
		return s.der, s.issued, nil
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
	der, err := s.ca.IssueCRL(revoked, number, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	s.der, s.mark, s.issued = der, mark, now
	s.log.Info("CRL issued", "number", number, "revoked", len(revoked))
	return der, now, nil
}

// Source is the station's own CRL as a personalize.CRLSource.
func (s *Service) Source(ctx context.Context, _ *x509.Certificate) ([]byte, error) {
	der, _, err := s.CRL(ctx)
	return der, err
}

// CACertificate is the issuing CA's certificate (DER), published next to
// the CRL.
func (s *Service) CACertificate() []byte { return s.ca.CACertificateDER() }
