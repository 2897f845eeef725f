package station

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"id06/api"
	"id06/order"
	"id06/personalize"
	"id06/queue"
	"id06/station/stationtest"
)

// fetch GETs a public URL (no token) and returns its body and headers.
func fetch(t *testing.T, u string) ([]byte, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", u, resp.StatusCode, err, b)
	}
	return b, resp.Header
}

// crlOf fetches /pki/ca.crl, checks it against the CA and returns it with
// its revoked serials (hex, as the station stores them) and reason codes.
func crlOf(t *testing.T, base string, ca *x509.Certificate) (*x509.RevocationList, map[string]int) {
	t.Helper()
	der, h := fetch(t, base+"/pki/ca.crl")
	if h.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("CRL served as %q", h.Get("Content-Type"))
	}
	if _, err := personalize.ParseCRL(der, ca, time.Now()); err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if d := l.NextUpdate.Sub(l.ThisUpdate); d > 24*time.Hour {
		t.Fatalf("CRL current for %v, want at most 24 h", d)
	}
	out := map[string]int{}
	for _, e := range l.RevokedCertificateEntries {
		out[hex.EncodeToString(e.SerialNumber.Bytes())] = e.ReasonCode
	}
	return l, out
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// A produced card's two certificates are recorded; the supplier revokes it
// through the API and the public CRL lists them at once; the operator API
// and the page revoke too, audited.
func TestRevokeCard(t *testing.T) {
	s, addr, token := runStation(t, nil)
	base := "http://" + addr
	ctx := context.Background()
	for i, id := range []string{"rev-1", "rev-2", "rev-3"} {
		submit(t, base, token, example(t, id, []string{"pass_london_001_03.jpg", "pass_london_005_03.jpg", "pass_london_010_03.jpg"}[i], false))
	}
	for _, id := range []string{"rev-1", "rev-2", "rev-3"} {
		waitState(t, s, id, order.Produced)
	}
	ca := s.Chip.CACertificate()
	if crt, h := fetch(t, base+"/pki/ca.crt"); !bytes.Equal(crt, ca.Raw) || h.Get("Content-Type") != "application/pkix-cert" {
		t.Fatalf("/pki/ca.crt is not the CA certificate (%s)", h.Get("Content-Type"))
	}
	certs, err := s.Store.IssuedCerts(ctx, "rev-1")
	if err != nil || len(certs) != 2 || certs[0].Slot != "9a" || certs[1].Slot != "9e" {
		t.Fatalf("issued certificates %+v %v", certs, err)
	}
	o1, _ := s.Store.Get(ctx, "rev-1")
	if o1.CertSerial != certs[0].Serial {
		t.Fatalf("order's 9A serial %s, recorded %s", o1.CertSerial, certs[0].Serial)
	}
	before, got := crlOf(t, base, ca)
	if len(got) != 0 {
		t.Fatalf("CRL before any revocation: %v", got)
	}

	// The supplier API: its own order, a known reason, a produced card.
	other, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.AddToken(ctx, "other", other, []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	revoke := func(path, tok, reason string) (int, map[string]any) {
		status, out, _ := stationtest.Call(t, "POST", base+path, tok, map[string]string{"reason": reason})
		return status, out
	}
	if status, _ := revoke("/v1/orders/rev-1/revoke", other, "lost"); status != http.StatusNotFound {
		t.Fatalf("another supplier's order: %d", status)
	}
	if status, out := revoke("/v1/orders/rev-1/revoke", token, "misplaced"); status != http.StatusUnprocessableEntity || !strings.Contains(asJSON(out), "holder_left") {
		t.Fatalf("unknown reason: %d %v", status, out)
	}
	status, out := revoke("/v1/orders/rev-1/revoke", token, "lost")
	if rv, _ := out["revoked"].(map[string]any); status != http.StatusOK || out["state"] != "produced" || rv["reason"] != "lost" {
		t.Fatalf("revoke: %d %v", status, out)
	}
	after, got := crlOf(t, base, ca)
	if len(got) != 2 || got[certs[0].Serial] != 1 || got[certs[1].Serial] != 1 {
		t.Fatalf("CRL after revoking for loss: %v, want both certificates with keyCompromise", got)
	}
	if after.Number.Cmp(before.Number) <= 0 {
		t.Fatalf("CRL number %v after %v", after.Number, before.Number)
	}
	notices, _ := s.Store.OrderNotices(ctx, "rev-1")
	if n := notices[len(notices)-1]; n.Type != order.NoticeRevoked || !strings.Contains(string(n.Payload), certs[1].Serial) {
		t.Fatalf("last notice %s %s", n.Type, n.Payload)
	}
	if status, out = revoke("/v1/orders/rev-1/revoke", token, "lost"); status != http.StatusOK {
		t.Fatalf("repeated revocation: %d %v", status, out)
	}
	if status, out = revoke("/v1/orders/rev-1/revoke", token, "stolen"); status != http.StatusConflict || errCode(out) != "already_revoked" {
		t.Fatalf("revocation for another reason: %d %v", status, out)
	}
	if status, out, _ := stationtest.Call(t, "GET", base+"/v1/orders/rev-1", token, nil); status != http.StatusOK || !strings.Contains(asJSON(out["revoked"]), `"lost"`) {
		t.Fatalf("GET order after revocation: %d %v", status, out)
	}

	// The operator API, for any supplier's order, audited.
	operator, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.AddToken(ctx, "floor", operator, []string{"operator"}); err != nil {
		t.Fatal(err)
	}
	if status, out = revoke("/v1/ops/orders/rev-2/revoke", operator, "holder_left"); status != http.StatusOK {
		t.Fatalf("operator revoke: %d %v", status, out)
	}
	if !stationtest.HasAudit(t, s.Store, "api:floor revoke") {
		t.Fatalf("operator API revocation not audited: %v", stationtest.Audit(t, s.Store))
	}

	// The page: an operator picks the reason; the audit log and the list of
	// revoked cards show it.
	stationtest.AddUser(t, s.Store, "eva", queue.RoleOperator, stationtest.Password)
	b := stationtest.NewBrowser(t, base)
	csrf := b.LoggedIn("eva", stationtest.Password)
	if page := b.Get("/ui/orders/rev-3").Body; !strings.Contains(page, `id="revoke"`) {
		t.Fatal("the order page offers no revocation for a produced card")
	}
	if r := b.Post("/ui/orders/rev-3/revoke", url.Values{"csrf": {csrf}, "reason": {"no reason"}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("page revocation without a known reason: %d", r.Status)
	}
	if r := b.Post("/ui/orders/rev-3/revoke", url.Values{"csrf": {csrf}, "reason": {"damaged"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("page revocation: %d %s", r.Status, r.Body)
	}
	if !stationtest.HasAudit(t, s.Store, "operator:eva revoke") {
		t.Fatalf("page revocation not audited: %v", stationtest.Audit(t, s.Store))
	}
	if page := b.Get("/ui/orders/rev-3").Body; !strings.Contains(page, `id="revoked"`) || strings.Contains(page, `id="revoke"`) {
		t.Fatal("the order page does not show the card revoked")
	}
	list := b.Get("/ui/revocations").Body
	o3, _ := s.Store.Get(ctx, "rev-3")
	for _, want := range []string{o1.CardNumber, o3.CardNumber, "operator:eva", "damaged", "holder left the company"} {
		if !strings.Contains(list, want) {
			t.Errorf("the revoked cards page lacks %q", want)
		}
	}
	if _, got := crlOf(t, base, ca); len(got) != 6 {
		t.Fatalf("CRL after three revocations: %d entries", len(got))
	}

	// An order without a card cannot be revoked.
	submit(t, base, token, example(t, "rev-4", "pass_london_001_03.jpg", false))
	if status, out = revoke("/v1/ops/orders/rev-4/revoke", operator, "lost"); status != http.StatusConflict || errCode(out) != "wrong_state" {
		t.Fatalf("revoking an order with no card: %d %v", status, out)
	}
}

// A card re-produced by an operator takes its old certificates to the CRL;
// the new card's stay off it.
func TestReproducedCardIsRevoked(t *testing.T) {
	s, addr, token := runStation(t, nil)
	base := "http://" + addr
	submit(t, base, token, example(t, "rp-1", "pass_london_010_03.jpg", false))
	waitState(t, s, "rp-1", order.Produced)
	old, _ := s.Store.IssuedCerts(t.Context(), "rp-1")
	if _, err := s.Pipeline.Reproduce(t.Context(), "rp-1", "operator:eva", "print smudged"); err != nil {
		t.Fatal(err)
	}
	s.Pipeline.Wake()
	waitState(t, s, "rp-1", order.Produced)
	_, got := crlOf(t, base, s.Chip.CACertificate())
	all, _ := s.Store.IssuedCerts(t.Context(), "rp-1")
	if len(old) != 2 || len(all) != 4 || len(got) != 2 || got[old[0].Serial] != 4 || got[old[1].Serial] != 4 {
		t.Fatalf("CRL %v after re-producing; old certificates %+v, all %+v", got, old, all)
	}
	for _, c := range all[2:] {
		if _, revoked := got[c.Serial]; revoked {
			t.Fatalf("the new card's certificate %s is on the CRL", c.Serial)
		}
	}
}
