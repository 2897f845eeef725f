package station

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
)

// opProduced drives an order through the store the way the pipeline does,
// up to produced, with the given delivery address.
func opProduced(t *testing.T, s *Server, id string, express bool, street string) *order.Record {
	t.Helper()
	ctx := context.Background()
	doc, _ := json.Marshal(map[string]any{
		"holder":   map[string]string{"first_name": "Anna", "last_name": "Svensson", "print_name": "Anna Svensson " + id},
		"delivery": map[string]string{"name": "Bygg AB", "street": street, "postal_code": "111 22", "city": "Stockholm", "country": "SE"},
	})
	if _, _, err := s.store.Submit(ctx, queue.NewOrder{ID: id, Supplier: "dev", BodyHash: "h-" + id, Doc: doc, CardType: "id06", Express: express,
		Approvals: []order.Approval{{Kind: "holder", Method: "bankid", At: time.Now()}}, Photo: []byte("jpeg")}, "supplier:dev"); err != nil {
		t.Fatal(err)
	}
	j, err := s.store.Claim(ctx, "w", time.Minute, map[order.State]order.State{order.Queued: order.Imaging})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.PhotoPassed(ctx, j, map[string][]byte{"portrait": []byte("png")}, "ok"); err != nil {
		t.Fatal(err)
	}
	if j, err = s.store.Claim(ctx, "w", time.Minute, map[order.State]order.State{order.Ready: order.Encoding}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.AllocateCard(ctx, j, "BB"); err != nil {
		t.Fatal(err)
	}
	o, _ := s.store.Get(ctx, id)
	j = &queue.Claim{Record: o, Owner: "w"}
	uid := "04AABB" + strings.ToUpper(id[len(id)-2:])
	if err := s.store.RecordChip(ctx, j, uid); err != nil {
		t.Fatal(err)
	}
	j.ChipUID = uid
	if err := s.store.Encoded(ctx, j, "01", "2031-11-22", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Produced(ctx, j, "printed"); err != nil {
		t.Fatal(err)
	}
	o, _ = s.store.Get(ctx, id)
	return o
}

func TestShipmentsAndReproduction(t *testing.T) {
	s, hs := opStation(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	opUser(t, s, "quinn", queue.RoleQA, opPassword)
	a1 := opProduced(t, s, "ord-01", false, "Storgatan 1")
	opProduced(t, s, "ord-02", false, "Storgatan 1")
	opProduced(t, s, "ord-03", false, "Kungsgatan 9")
	opProduced(t, s, "ord-04", true, "Storgatan 1")
	ctx := context.Background()

	qa := newOpBrowser(t, hs.URL)
	if r := qa.post("/ui/shipments", url.Values{"csrf": {qa.loggedIn("quinn", opPassword)}}); r.status != http.StatusForbidden {
		t.Fatalf("QA packing: %d", r.status)
	}
	b := newOpBrowser(t, hs.URL)
	token := b.loggedIn("eva", opPassword)

	// A card spoiled after production gets a new number and blank.
	if r := b.post("/ui/orders/ord-01/reproduce", url.Values{"csrf": {token}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("reproduce without a reason: %d", r.status)
	}
	if r := b.post("/ui/orders/ord-01/reproduce", url.Values{"csrf": {token}, "reason": {"print smudged"}}); r.status != http.StatusSeeOther {
		t.Fatalf("reproduce: %d", r.status)
	}
	o, _ := s.store.Get(ctx, "ord-01")
	if o.State != order.Ready || o.CardNumber != "" {
		t.Fatalf("after reproduce: %s %q", o.State, o.CardNumber)
	}
	if numbers, _ := s.store.CardNumbers(ctx, "ord-01"); numbers[a1.CardNumber] != "spoiled" {
		t.Fatalf("old card %s: %q", a1.CardNumber, numbers[a1.CardNumber])
	}
	if n, _ := s.store.SpoiledCount(ctx, time.Now().Add(-time.Hour)); n != 1 {
		t.Fatalf("spoiled blanks today = %d", n)
	}

	if r := b.post("/ui/shipments", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("pack: %d", r.status)
	}
	page := b.get("/ui/shipments").body
	ids := regexp.MustCompile(`id="shipment-(SHP-[0-9a-f-]+)"`).FindAllStringSubmatch(page, -1)
	if len(ids) != 3 {
		t.Fatalf("%d shipments, want 3 (express alone, then one per address)", len(ids))
	}
	var storgatan string
	for _, m := range ids {
		sh, orders, err := s.store.Shipment(ctx, m[1])
		if err != nil {
			t.Fatal(err)
		}
		if sh.Express && (len(orders) != 1 || orders[0].ID != "ord-04") {
			t.Fatalf("express shipment holds %d orders", len(orders))
		}
		if !sh.Express && len(orders) == 1 && orders[0].ID == "ord-02" {
			storgatan = sh.ID
		}
	}
	if storgatan == "" {
		t.Fatal("ord-02 is not alone in the Storgatan parcel (ord-01 was re-produced, ord-04 is express)")
	}
	resp, err := b.c.Get(hs.URL + "/ui/shipments/" + storgatan + "/packing-list.pdf")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 5)
	resp.Body.Read(head)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || string(head) != "%PDF-" {
		t.Fatalf("packing list: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), head)
	}
	if r := b.post("/ui/shipments/"+storgatan+"/shipped", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("mark shipped: %d", r.status)
	}
	if o, _ := s.store.Get(ctx, "ord-02"); o.State != order.Shipped {
		t.Fatalf("ord-02 %s", o.State)
	}
	notices, _ := s.store.OrderNotices(ctx, "ord-02")
	var last map[string]any
	json.Unmarshal(notices[len(notices)-1].Payload, &last)
	if last["type"] != "order.shipped" || last["shipment_id"] != storgatan {
		t.Fatalf("last notice %v", last)
	}
	if r := b.post("/ui/shipments/"+storgatan+"/shipped", url.Values{"csrf": {token}}); r.status != http.StatusConflict {
		t.Fatalf("shipping twice: %d", r.status)
	}
	if !opHasAudit(t, s, "operator:eva shipped") {
		t.Fatalf("audit %v", opAudit(t, s))
	}
}
