package station

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"id06/personalize"
	"id06/queue"
)

// fetch GETs a public URL (no token) and returns its body.
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

// crlSerials fetches /pki/ca.crl, checks it against the CA and returns the
// revoked serials (hex) with their reason codes.
func crlSerials(t *testing.T, base string, ca *x509.Certificate) map[string]int {
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
	return out
}

func crlNumber(t *testing.T, base string) *big.Int {
	der, _ := fetch(t, base+"/pki/ca.crl")
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return l.Number
}

// A produced card's two certificates are recorded; the supplier revokes it
// through the API, and the public CRL lists them at once; the operator API
// and the page revoke too, audited.
func TestRevokeCard(t *testing.T) {
	s, hs, token := testServer(t, nil)
	runPipeline(t, s)
	ctx := context.Background()
	for _, id := range []string{"rev-1", "rev-2", "rev-3"} {
		if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, id, realPhoto(t)))); status != 201 {
			t.Fatalf("%d %v", status, out)
		}
	}
	for _, id := range []string{"rev-1", "rev-2", "rev-3"} {
		waitState(t, s, id, queue.Produced)
	}
	ca := s.chip.CACertificate()
	if crt, h := fetch(t, hs.URL+"/pki/ca.crt"); !bytes.Equal(crt, ca.Raw) || h.Get("Content-Type") != "application/pkix-cert" {
		t.Fatalf("/pki/ca.crt is not the CA certificate (%s)", h.Get("Content-Type"))
	}
	certs, err := s.store.IssuedCerts(ctx, "rev-1")
	if err != nil || len(certs) != 2 || certs[0].Slot != "9a" || certs[1].Slot != "9e" {
		t.Fatalf("issued certificates %+v %v", certs, err)
	}
	o1, _ := s.store.Get(ctx, "rev-1")
	if o1.CertSerial != certs[0].Serial {
		t.Fatalf("order's 9A serial %s, recorded %s", o1.CertSerial, certs[0].Serial)
	}
	if got := crlSerials(t, hs.URL, ca); len(got) != 0 {
		t.Fatalf("CRL before any revocation: %v", got)
	}
	before := crlNumber(t, hs.URL)

	// The supplier API: its own order, a known reason, a produced card.
	other := opToken(t, s, "other", "orders")
	if status, _, _ := opAPI(t, "POST", hs.URL+"/v1/orders/rev-1/revoke", other, map[string]string{"reason": "lost"}); status != http.StatusNotFound {
		t.Fatalf("another supplier's order: %d", status)
	}
	status, out, _ := opAPI(t, "POST", hs.URL+"/v1/orders/rev-1/revoke", token, map[string]string{"reason": "misplaced"})
	if status != http.StatusUnprocessableEntity || !strings.Contains(opJSON(out), "holder_left") {
		t.Fatalf("unknown reason: %d %v", status, out)
	}
	status, out, _ = opAPI(t, "POST", hs.URL+"/v1/orders/rev-1/revoke", token, map[string]string{"reason": "lost"})
	if status != http.StatusOK || out["state"] != "produced" || opJSON(out["revoked"]) == "null" || out["revoked"].(map[string]any)["reason"] != "lost" {
		t.Fatalf("revoke: %d %v", status, out)
	}
	got := crlSerials(t, hs.URL, ca)
	if len(got) != 2 || got[certs[0].Serial] != 1 || got[certs[1].Serial] != 1 {
		t.Fatalf("CRL after revoking for loss: %v, want both certificates with keyCompromise", got)
	}
	if after := crlNumber(t, hs.URL); after.Cmp(before) <= 0 {
		t.Fatalf("CRL number %v after %v", after, before)
	}
	notices, _ := s.store.OrderNotices(ctx, "rev-1")
	if n := notices[len(notices)-1]; n.Type != "order.revoked" || !strings.Contains(string(n.Payload), certs[1].Serial) {
		t.Fatalf("last notice %s %s", n.Type, n.Payload)
	}
	if status, out, _ = opAPI(t, "POST", hs.URL+"/v1/orders/rev-1/revoke", token, map[string]string{"reason": "lost"}); status != http.StatusOK {
		t.Fatalf("repeated revocation: %d %v", status, out)
	}
	if status, out, _ = opAPI(t, "POST", hs.URL+"/v1/orders/rev-1/revoke", token, map[string]string{"reason": "stolen"}); status != http.StatusConflict || opErrCode(out) != "already_revoked" {
		t.Fatalf("revocation for another reason: %d %v", status, out)
	}
	code, got2 := opAPIGet(t, hs.URL+"/v1/orders/rev-1", token)
	if code != http.StatusOK || !strings.Contains(got2, `"reason": "lost"`) {
		t.Fatalf("GET order after revocation: %d %s", code, got2)
	}

	// The operator API, for any supplier's order, audited.
	operator := opToken(t, s, "floor", "operator")
	if status, out, _ = opAPI(t, "POST", hs.URL+"/v1/ops/orders/rev-2/revoke", operator, map[string]string{"reason": "holder_left"}); status != http.StatusOK {
		t.Fatalf("operator revoke: %d %v", status, out)
	}
	if !opHasAudit(t, s, "api:floor revoke") {
		t.Fatalf("operator API revocation not audited: %v", opAudit(t, s))
	}

	// The page: an operator picks the reason; the timeline, the audit log
	// and the list of revoked cards show it.
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	b := newOpBrowser(t, hs.URL)
	csrf := b.loggedIn("eva", opPassword)
	if page := b.get("/ui/orders/rev-3").body; !strings.Contains(page, `id="revoke"`) {
		t.Fatal("the order page offers no revocation for a produced card")
	}
	if r := b.post("/ui/orders/rev-3/revoke", url.Values{"csrf": {csrf}, "reason": {"no reason"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("page revocation without a known reason: %d", r.status)
	}
	if r := b.post("/ui/orders/rev-3/revoke", url.Values{"csrf": {csrf}, "reason": {"damaged"}}); r.status != http.StatusSeeOther {
		t.Fatalf("page revocation: %d %s", r.status, r.body)
	}
	if !opHasAudit(t, s, "operator:eva revoke") {
		t.Fatalf("page revocation not audited: %v", opAudit(t, s))
	}
	if page := b.get("/ui/orders/rev-3").body; !strings.Contains(page, `id="revoked"`) || strings.Contains(page, `id="revoke"`) {
		t.Fatal("the order page does not show the card revoked")
	}
	list := b.get("/ui/revocations").body
	o3, _ := s.store.Get(ctx, "rev-3")
	for _, want := range []string{o1.CardNumber, o3.CardNumber, "operator:eva", "damaged", "holder left the company"} {
		if !strings.Contains(list, want) {
			t.Errorf("the revoked cards page lacks %q", want)
		}
	}
	if got := crlSerials(t, hs.URL, ca); len(got) != 6 {
		t.Fatalf("CRL after three revocations: %d entries", len(got))
	}

	// An order without a card cannot be revoked.
	submitStored(t, s, "rev-4")
	if status, out, _ = opAPI(t, "POST", hs.URL+"/v1/ops/orders/rev-4/revoke", operator, map[string]string{"reason": "lost"}); status != http.StatusConflict || opErrCode(out) != "wrong_state" {
		t.Fatalf("revoking an order with no card: %d %v", status, out)
	}
}

// A card re-produced from the page takes its old certificates to the CRL.
func TestReproducedCardIsRevoked(t *testing.T) {
	s, hs, token := testServer(t, nil)
	runPipeline(t, s)
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "rp-1", realPhoto(t)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	waitState(t, s, "rp-1", queue.Produced)
	old, _ := s.store.IssuedCerts(t.Context(), "rp-1")
	if _, err := s.store.Reproduce(t.Context(), "rp-1", "operator:eva", "print smudged"); err != nil {
		t.Fatal(err)
	}
	s.pipeline.Wake()
	waitState(t, s, "rp-1", queue.Produced)
	got := crlSerials(t, hs.URL, s.chip.CACertificate())
	all, _ := s.store.IssuedCerts(t.Context(), "rp-1")
	if len(old) != 2 || len(all) != 4 || len(got) != 2 || got[old[0].Serial] != 4 || got[old[1].Serial] != 4 {
		t.Fatalf("CRL %v after re-producing; old certificates %+v, all %+v", got, old, all)
	}
	for _, c := range all[2:] {
		if _, revoked := got[c.Serial]; revoked {
			t.Fatalf("the new card's certificate %s is on the CRL", c.Serial)
		}
	}
}

func opErrCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func opAPIGet(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
