package queuetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
)

// encodeWithCerts takes an order to the chip as the pipeline does when a run
// was interrupted once: the first run's two certificates, then the resumed
// run's two, of which only the last pair stays on the chip.
func encodeWithCerts(t *testing.T, s *queue.Store, id string, c *clock) (*queue.Claim, []string, []string) {
	t.Helper()
	ctx := context.Background()
	j := toChip(t, s, queue.NewOrder{ID: id, Supplier: "sup", BodyHash: "h-" + id, Doc: []byte(`{}`), CardType: "id06",
		Approvals: Holder(c.now()), Photo: []byte("jpeg")}, "04A1B2C3")
	orphans, final := []string{id + "a1", id + "e1"}, []string{id + "a2", id + "e2"}
	for i, serial := range append(append([]string(nil), orphans...), final...) {
		if err := s.RecordCert(ctx, j, []string{"9a", "9e"}[i%2], serial, c.now().AddDate(3, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SupersedeCerts(ctx, j, final); err != nil {
		t.Fatal(err)
	}
	if err := s.Encoded(ctx, j, final[0], "2031-11-22", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	return j, orphans, final
}

func crlSerials(t *testing.T, s *queue.Store, now time.Time) map[string]string {
	t.Helper()
	entries, err := s.CRLEntries(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		out[e.Serial] = e.Reason
	}
	return out
}

func testRevokeCard(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	j, orphans, final := encodeWithCerts(t, s, "o1", c)
	if got := crlSerials(t, s, c.now()); len(got) != 2 || got[orphans[0]] != queue.RevokeSuperseded || got[orphans[1]] != queue.RevokeSuperseded {
		t.Fatalf("CRL after a resumed run: %v, want the first run's certificates superseded", got)
	}
	if _, _, err := s.Revoke(ctx, "o1", "sup", "supplier:sup", "lost"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("revoking a card still at the printer: %v, want queue.ErrState", err)
	}
	if err := s.Produced(ctx, j, "printed"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Revoke(ctx, "o1", "other", "supplier:other", "lost"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("another supplier's order: %v, want queue.ErrNotFound", err)
	}
	if rev, err := s.OrderRevocation(ctx, "o1"); err != nil || rev != nil {
		t.Fatalf("a card not revoked: %+v %v", rev, err)
	}

	c.add(time.Hour)
	rev, created, err := s.Revoke(ctx, "o1", "sup", "supplier:sup", "lost")
	if err != nil || !created || rev.Reason != "lost" || !slices.Equal(rev.Serials, final) {
		t.Fatalf("revoke: %+v created %v, %v", rev, created, err)
	}
	got := crlSerials(t, s, c.now())
	if len(got) != 4 || got[final[0]] != "lost" || got[final[1]] != "lost" {
		t.Fatalf("CRL after revoking: %v", got)
	}
	o, _ := s.Get(ctx, "o1")
	if o.State != order.Produced {
		t.Fatalf("state after revoking %s, want it kept (produced)", o.State)
	}
	if r, err := s.OrderRevocation(ctx, "o1"); err != nil || r == nil || r.Reason != "lost" || !r.At.Equal(c.now()) {
		t.Fatalf("order revocation %+v %v", r, err)
	}
	ev, _ := s.Events(ctx, "o1")
	if last := ev[len(ev)-1]; last.Actor != "supplier:sup" || last.State != order.Produced {
		t.Fatalf("last event %+v", last)
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	last := notices[len(notices)-1]
	var body struct {
		CardNumber string   `json:"card_number"`
		Reason     string   `json:"reason"`
		Serials    []string `json:"certificate_serials"`
	}
	if err := json.Unmarshal(last.Payload, &body); err != nil || last.Type != "order.revoked" || body.Reason != "lost" || body.CardNumber != o.CardNumber || !slices.Equal(body.Serials, final) {
		t.Fatalf("notice %s %s", last.Type, last.Payload)
	}

	// Again with the same reason: the first revocation, nothing new.
	c.add(time.Hour)
	again, created, err := s.Revoke(ctx, "o1", "", "operator:eva", "lost")
	if err != nil || created || again.Reason != "lost" || !again.At.Equal(rev.At) {
		t.Fatalf("revoke again: %+v created %v, %v", again, created, err)
	}
	if n, _ := s.OrderNotices(ctx, "o1"); len(n) != len(notices) {
		t.Fatal("a repeated revocation sent another notice")
	}
	if _, _, err := s.Revoke(ctx, "o1", "", "operator:eva", "stolen"); !errors.Is(err, queue.ErrRevoked) {
		t.Fatalf("revoke again for another reason: %v, want ErrRevoked", err)
	}
	cards, err := s.RevokedCards(ctx, 10)
	if err != nil || len(cards) != 2 || cards[0].Reason != "lost" || cards[0].CardNumber != o.CardNumber || cards[1].Reason != queue.RevokeSuperseded {
		t.Fatalf("revoked cards %+v %v", cards, err)
	}
	// Expired certificates leave the CRL.
	if got := crlSerials(t, s, c.now().AddDate(4, 0, 0)); len(got) != 0 {
		t.Fatalf("CRL after the certificates expired: %v", got)
	}
}

// A blank spoiled after its certificates were issued, and a produced card
// sent back for re-production, take their certificates to the CRL.
func testSpoiledCardsAreRevoked(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	j, _, final := encodeWithCerts(t, s, "o1", c)
	if failed, err := s.SpoilBlank(ctx, j, "print head jam", 3); err != nil || failed {
		t.Fatalf("spoil: %v %v", failed, err)
	}
	if got := crlSerials(t, s, c.now()); got[final[0]] != queue.RevokeSpoiled || got[final[1]] != queue.RevokeSpoiled {
		t.Fatalf("CRL after the blank was spoiled: %v", got)
	}
}

func testReproducedCardsAreRevoked(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	j2, _, final2 := encodeWithCerts(t, s, "o2", c)
	if err := s.Produced(ctx, j2, "printed"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reproduce(ctx, "o2", "operator:eva", "print smudged"); err != nil {
		t.Fatal(err)
	}
	if got := crlSerials(t, s, c.now()); got[final2[0]] != queue.RevokeSuperseded || got[final2[1]] != queue.RevokeSuperseded {
		t.Fatalf("CRL after re-production: %v", got)
	}
}

// A card made before certificates were recorded (only the 9A serial on the
// order) can still be revoked.
func testRevokeCardMadeBeforeCertificatesWereRecorded(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	produce(t, s, "old", false, c.now())
	rev, created, err := s.Revoke(ctx, "old", "sup", "supplier:sup", "holder_left")
	if err != nil || !created || !slices.Equal(rev.Serials, []string{"01"}) {
		t.Fatalf("revoke: %+v %v %v", rev, created, err)
	}
	if got := crlSerials(t, s, c.now()); got["01"] != "holder_left" {
		t.Fatalf("CRL %v", got)
	}
}

func testCRLNumbersGrow(t *testing.T, e *env) {
	s, _ := e.first()
	ctx := context.Background()
	a, err := s.NextCRLNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.NextCRLNumber(ctx)
	if err != nil || b != a+1 || a < 1 {
		t.Fatalf("CRL numbers %d then %d (%v)", a, b, err)
	}
}
