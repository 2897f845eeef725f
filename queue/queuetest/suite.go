// Package queuetest is the storage contract's conformance suite: every
// behaviour the pipeline, the API, the webhooks and the operator page rely
// on, written once and run against each database the store supports
// (SQLite and PostgreSQL), as River runs one suite against its drivers.
//
//	func TestConformance(t *testing.T) { queuetest.Run(t, newDB) }
//
// newDB makes a new, empty database for one test and returns what
// queue.Open takes: a SQLite path or a postgres:// URL. Tests that need a
// fleet open several stores, one per station name, on that one database.
package queuetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
)

// Run runs the suite against the databases newDB makes.
func Run(t *testing.T, newDB func(t testing.TB) string) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, &env{t: t, dsn: newDB(t), clock: &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}})
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, e *env)
}{
	{"SubmitIsIdempotent", testSubmitIsIdempotent},
	{"SubmitSameIDConcurrently", testSubmitSameIDConcurrently},
	{"OrderIDsAreUniquePerSupplier", testOrderIDsAreUniquePerSupplier},
	{"UnapprovedOrdersWait", testUnapprovedOrdersWait},
	{"TradeOrgApprovalRequired", testTradeOrgApprovalRequired},
	{"ClaimPriority", testClaimPriority},
	{"ClaimedOnceAcrossStations", testClaimedOnceAcrossStations},
	{"FinishingIsGuarded", testFinishingIsGuarded},
	{"OperatorMovesAreGuarded", testOperatorMovesAreGuarded},
	{"RescueAndStaleWorker", testRescueAndStaleWorker},
	{"LeasesBelongToStations", testLeasesBelongToStations},
	{"CardNumbersNeverReused", testCardNumbersNeverReused},
	{"CardNumbersDistinctAcrossStations", testCardNumbersDistinctAcrossStations},
	{"ReproduceRetiresTheCard", testReproduceRetiresTheCard},
	{"ShipmentLifecycle", testShipmentLifecycle},
	{"PackingRunIsAtomic", testPackingRunIsAtomic},
	{"OperatorStopsAnOrderInTheDevice", testOperatorStopsAnOrderInTheDevice},
	{"RefusedOrderFailsInsteadOfLooping", testRefusedOrderFailsInsteadOfLooping},
	{"ExpressFigures", testExpressFigures},
	{"ClaimNoticesSkipsOtherSuppliers", testClaimNoticesSkipsOtherSuppliers},
	{"NoticeHasOneClaimerAtATime", testNoticeHasOneClaimerAtATime},
	{"NoticeRetriesAndDeath", testNoticeRetriesAndDeath},
	{"UsersAndSessions", testUsersAndSessions},
	{"Tokens", testTokens},
	{"Blobs", testBlobs},
	{"ListAndSearch", testListAndSearch},
	{"SearchFindsHolderNames", testSearchFindsHolderNames},
	{"PhotoVerdicts", testPhotoVerdicts},
	{"Stations", testStations},
	{"MigrationsOnceUnderConcurrentOpens", testMigrationsOnceUnderConcurrentOpens},
	{"RevokeCard", testRevokeCard},
	{"SpoiledCardsAreRevoked", testSpoiledCardsAreRevoked},
	{"ReproducedCardsAreRevoked", testReproducedCardsAreRevoked},
	{"RevokeCardMadeBeforeCertificatesWereRecorded", testRevokeCardMadeBeforeCertificatesWereRecorded},
	{"CRLNumbersGrow", testCRLNumbersGrow},
	{"ClaimLane", testClaimLane},
	{"LanesClaimOnceAcrossStations", testLanesClaimOnceAcrossStations},
	{"RecordPrintAndSpoil", testRecordPrintAndSpoil},
	{"SpoilInHand", testSpoilInHand},
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test's database; every store opened on it shares one clock.
type env struct {
	t     *testing.T
	dsn   string
	clock *clock
	main  *queue.Store
}

// open opens a store on the test's database for the named station.
func (e *env) open(station string) *queue.Store {
	e.t.Helper()
	s, err := queue.Open(e.dsn, queue.WithClock(e.clock.now), queue.WithStation(station))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// first is the store of station "st-a", the one most tests need.
func (e *env) first() (*queue.Store, *clock) {
	if e.main == nil {
		e.main = e.open("st-a")
	}
	return e.main, e.clock
}

// Holder is a holder approval at the given time.
func Holder(at time.Time) []order.Approval {
	return []order.Approval{{Kind: "holder", Method: "bankid", At: at}}
}

// Submit stores an order of supplier "sup" with the approvals.
func Submit(t testing.TB, s *queue.Store, id string, express bool, approvals []order.Approval) *order.Record {
	t.Helper()
	o, _, err := s.Submit(context.Background(), queue.NewOrder{ID: id, Supplier: "sup", BodyHash: "h-" + id, Doc: []byte(`{}`),
		CardType: "id06", Express: express, Approvals: approvals, Photo: []byte("jpeg")}, "api")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

var (
	photoMoves  = map[order.State]order.State{order.Queued: order.Imaging, order.Imaging: order.Imaging}
	deviceMoves = map[order.State]order.State{order.Ready: order.Encoding, order.Encoding: order.Encoding, order.Printing: order.Printing}
)

func testSubmitIsIdempotent(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	n := queue.NewOrder{ID: "o1", Supplier: "sup", BodyHash: "abc", Doc: []byte(`{}`), CardType: "id06", Approvals: Holder(c.now()), Photo: []byte("p")}
	first, created, err := s.Submit(ctx, n, "api")
	if err != nil || !created || first.State != order.Queued {
		t.Fatalf("first submit: %v created=%v state=%v", err, created, first.State)
	}
	again, created, err := s.Submit(ctx, n, "api")
	if err != nil || created || again.State != order.Queued {
		t.Fatalf("same body again: %v created=%v", err, created)
	}
	n.BodyHash = "other"
	if _, _, err := s.Submit(ctx, n, "api"); !errors.Is(err, queue.ErrConflict) {
		t.Fatalf("different body: got %v, want queue.ErrConflict", err)
	}
	ev, _ := s.Events(ctx, "o1")
	if len(ev) != 2 || ev[0].State != order.Received || ev[1].State != order.Queued {
		t.Fatalf("events = %+v", ev)
	}
}

func testUnapprovedOrdersWait(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	o := Submit(t, s, "o1", false, nil)
	if o.State != order.AwaitingApproval {
		t.Fatalf("state = %s", o.State)
	}
	if _, err := s.Claim(ctx, "w", time.Minute, photoMoves); !errors.Is(err, queue.ErrNothingToClaim) {
		t.Fatalf("claimed an unapproved order: %v", err)
	}
	o, err := s.AddApproval(ctx, "o1", "sup", Holder(c.now())[0], "api")
	if err != nil || o.State != order.Queued {
		t.Fatalf("after approval: %v %s", err, o.State)
	}
}

func testTradeOrgApprovalRequired(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	o, _, err := s.Submit(ctx, queue.NewOrder{ID: "t1", Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`), CardType: "id06",
		TradeOrgRequired: true, Approvals: Holder(c.now()), Photo: []byte("p")}, "api")
	if err != nil || o.State != order.AwaitingApproval {
		t.Fatalf("%v %s", err, o.State)
	}
	o, err = s.AddApproval(ctx, "t1", "sup", order.Approval{Kind: "trade_org", Method: "eid", At: c.now()}, "api")
	if err != nil || o.State != order.Queued {
		t.Fatalf("%v %s", err, o.State)
	}
}

func testClaimPriority(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	base := c.now()
	Submit(t, s, "old", false, Holder(base.Add(-3*time.Hour)))
	Submit(t, s, "new", false, Holder(base.Add(-1*time.Hour)))
	Submit(t, s, "express", true, Holder(base.Add(-10*time.Minute)))
	var got []string
	for {
		j, err := s.Claim(ctx, "w", time.Minute, photoMoves)
		if errors.Is(err, queue.ErrNothingToClaim) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, j.ID)
	}
	want := []string{"express", "old", "new"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claim order = %v, want %v", got, want)
	}
	o, _ := s.Get(ctx, "express")
	if want := base.Add(-10 * time.Minute).Add(order.ExpressWindow); !o.Deadline.Equal(want) {
		t.Fatalf("deadline = %v, want %v", o.Deadline, want)
	}
}

func testFinishingIsGuarded(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	Submit(t, s, "o1", false, Holder(c.now()))
	j, err := s.Claim(ctx, "w1", time.Minute, photoMoves)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, "o1", "sup", "api", "holder left"); err != nil {
		t.Fatal(err)
	}
	if err := s.PhotoPassed(ctx, j, nil, "ok"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("finishing a cancelled order: %v", err)
	}
	o, _ := s.Get(ctx, "o1")
	if o.State != order.Cancelled {
		t.Fatalf("state = %s", o.State)
	}
}

func testRescueAndStaleWorker(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	Submit(t, s, "o1", false, Holder(c.now()))
	stale, err := s.Claim(ctx, "w1", time.Minute, photoMoves)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Rescue(ctx, false); n != 0 {
		t.Fatalf("rescued a live lease")
	}
	c.add(2 * time.Minute)
	if n, _ := s.Rescue(ctx, false); n != 1 {
		t.Fatalf("expired lease not rescued")
	}
	fresh, err := s.Claim(ctx, "w2", time.Minute, photoMoves)
	if err != nil || fresh.ID != "o1" || fresh.Attempt != 2 {
		t.Fatalf("reclaim: %v %+v", err, fresh)
	}
	if err := s.PhotoPassed(ctx, stale, nil, "late"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("stale worker finished: %v", err)
	}
	if err := s.PhotoPassed(ctx, fresh, map[string][]byte{"portrait": []byte("png")}, "ok"); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Blob(ctx, "o1", "portrait"); err != nil || string(b) != "png" {
		t.Fatalf("blob: %q %v", b, err)
	}
}

func testCardNumbersNeverReused(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	Submit(t, s, "o1", false, Holder(c.now()))
	moves := map[order.State]order.State{order.Queued: order.Encoding}
	j, err := s.Claim(ctx, "w", time.Minute, moves)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		if err := s.AllocateCard(ctx, j, "BB"); err != nil {
			t.Fatal(err)
		}
		if seen[j.CardNumber] || !order.ValidCardNumber(j.CardNumber) {
			t.Fatalf("card number %s reused or invalid", j.CardNumber)
		}
		seen[j.CardNumber] = true
		if err := s.RecordChip(ctx, j, fmt.Sprintf("04AABBCCDDEE%02X", i)); err != nil {
			t.Fatal(err)
		}
		failed, err := s.SpoilBlank(ctx, j, "verify failed", 3)
		if err != nil {
			t.Fatal(err)
		}
		if failed != (i == 2) {
			t.Fatalf("blank %d: failed=%v", i, failed)
		}
		if !failed {
			if j, err = s.Claim(ctx, "w", time.Minute, map[order.State]order.State{order.Ready: order.Encoding}); err != nil {
				t.Fatal(err)
			}
		}
	}
	nums, _ := s.CardNumbers(ctx, "o1")
	if len(nums) != 3 {
		t.Fatalf("card numbers = %v", nums)
	}
	for n, st := range nums {
		if st != "spoiled" {
			t.Fatalf("%s is %s", n, st)
		}
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	if len(notices) != 1 || notices[0].Type != "order.failed" {
		t.Fatalf("notices = %+v", notices)
	}
}

// Operators find an order by id, card number, chip UID or any part of the
// holder's names as intake recorded them; % and _ are matched literally.
func testSearchFindsHolderNames(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	if _, _, err := s.Submit(ctx, queue.NewOrder{ID: "o-1", Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`), CardType: "id06",
		HolderNames: []string{"Anna Ł. Svensson", "Anna Łukasz-Svensson"}, Approvals: Holder(c.now()), Photo: []byte("jpeg")}, "api"); err != nil {
		t.Fatal(err)
	}
	Submit(t, s, "o-2", false, Holder(c.now()))
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"o-1", 1}, {"Ł. Sv", 1}, {"Łukasz-Svensson", 1}, {"anna", 1}, {"Anna%", 0}, {"Ann_", 0}, {"Bertil", 0},
	} {
		got, err := s.List(ctx, queue.Filter{Search: tc.q})
		if err != nil || len(got) != tc.want {
			t.Errorf("search %q: %d orders (%v), want %d", tc.q, len(got), err, tc.want)
		}
	}
}

// Order ids are the supplier's: another supplier may use the same id. Each
// order gets a station-wide key (the plain id when it is free), resolves by
// (supplier, id), stays idempotent per supplier, and its notices name it by
// the supplier's id.
func testOrderIDsAreUniquePerSupplier(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	n := func(supplier, hash string) queue.NewOrder {
		return queue.NewOrder{ID: "po-1", Supplier: supplier, BodyHash: hash, Doc: []byte(`{}`), CardType: "id06", Approvals: Holder(c.now()), Photo: []byte("p")}
	}
	a, created, err := s.Submit(ctx, n("acme", "a"), "supplier:acme")
	if err != nil || !created {
		t.Fatalf("acme: %v created=%v", err, created)
	}
	b, created, err := s.Submit(ctx, n("bygg", "b"), "supplier:bygg")
	if err != nil || !created {
		t.Fatalf("bygg with acme's id: %v created=%v, want a new order", err, created)
	}
	if a.ID != "po-1" || b.ID == a.ID || a.SupplierOrderID != "po-1" || b.SupplierOrderID != "po-1" {
		t.Fatalf("keys %q %q, supplier ids %q %q", a.ID, b.ID, a.SupplierOrderID, b.SupplierOrderID)
	}
	// The key names print jobs and files: it keeps to the order id rule.
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`).MatchString(b.ID) {
		t.Fatalf("the second order's key %q breaks the order id rule", b.ID)
	}
	if again, created, err := s.Submit(ctx, n("bygg", "b"), "supplier:bygg"); err != nil || created || again.ID != b.ID {
		t.Fatalf("bygg resubmits: %v created=%v key %q", err, created, again.ID)
	}
	if _, _, err := s.Submit(ctx, n("bygg", "changed"), "supplier:bygg"); !errors.Is(err, queue.ErrConflict) {
		t.Fatalf("bygg changes its order: %v, want queue.ErrConflict", err)
	}
	for supplier, want := range map[string]string{"acme": a.ID, "bygg": b.ID} {
		o, err := s.SupplierOrder(ctx, supplier, "po-1")
		if err != nil || o.ID != want {
			t.Fatalf("%s's po-1: %v %+v", supplier, err, o)
		}
	}
	if _, err := s.SupplierOrder(ctx, "cement", "po-1"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a third supplier sees po-1: %v", err)
	}
	if list, _ := s.List(ctx, queue.Filter{Supplier: "bygg"}); len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("bygg's list: %+v", list)
	}
	if found, _ := s.List(ctx, queue.Filter{Search: "po-1"}); len(found) != 2 {
		t.Fatalf("operators searching po-1 find %d orders, want both", len(found))
	}
	if _, err := s.Cancel(ctx, b.ID, "bygg", "supplier:bygg", "no longer needed"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, a.ID); got.State == order.Cancelled {
		t.Fatal("bygg cancelled acme's order")
	}
	notices, _ := s.OrderNotices(ctx, b.ID)
	var payload struct {
		OrderID string `json:"order_id"`
	}
	if len(notices) != 1 || json.Unmarshal(notices[0].Payload, &payload) != nil || payload.OrderID != "po-1" || notices[0].Supplier != "bygg" {
		t.Fatalf("bygg's notice: %+v payload %s", notices, notices[0].Payload)
	}
}

// produce takes an approved order through every stage the way the pipeline does.
func produce(t *testing.T, s *queue.Store, id string, express bool, approvedAt time.Time) *order.Record {
	t.Helper()
	ctx := context.Background()
	j := printing(t, s, id, express, approvedAt)
	if err := s.Produced(ctx, j, "printed"); err != nil {
		t.Fatal(err)
	}
	o, err := s.Get(ctx, id)
	if err != nil || o.State != order.Produced {
		t.Fatalf("produce %s: %v state %v", id, err, o.State)
	}
	return o
}

func testReproduceRetiresTheCard(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	o := produce(t, s, "o1", false, c.now())
	old := o.CardNumber
	if _, err := s.Reproduce(ctx, "o1", "operator:eva", "print smudged"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "o1")
	if got.State != order.Ready || got.CardNumber != "" || got.ChipUID != "" || got.SealedSecrets != nil {
		t.Fatalf("after reproduce: state %s card %q chip %q", got.State, got.CardNumber, got.ChipUID)
	}
	numbers, _ := s.CardNumbers(ctx, "o1")
	if numbers[old] != "spoiled" {
		t.Fatalf("old card %s status %q, want spoiled", old, numbers[old])
	}
	ev, _ := s.Events(ctx, "o1")
	if last := ev[len(ev)-1]; last.Actor != "operator:eva" || last.State != order.Ready {
		t.Fatalf("last event %+v", last)
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	if n := notices[len(notices)-1]; n.Type != "order.card_spoiled" {
		t.Fatalf("last notice %s", n.Type)
	}
	if _, err := s.Reproduce(ctx, "o1", "operator:eva", "again"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("reproduce of a ready order: %v, want queue.ErrState", err)
	}
}

func testShipmentLifecycle(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	produce(t, s, "o1", false, c.now())
	produce(t, s, "o2", false, c.now())
	un, err := s.Unshipped(ctx)
	if err != nil || len(un) != 2 {
		t.Fatalf("unshipped = %d, %v", len(un), err)
	}
	parcel := func(id string, orders ...string) order.Shipment {
		sh := order.Shipment{ID: id, Address: []string{"Storgatan 1"}}
		for _, o := range orders {
			sh.Cards = append(sh.Cards, order.ShipmentCard{OrderID: o})
		}
		return sh
	}
	if err := s.CreateShipments(ctx, []order.Shipment{parcel("SHP-1", "o1", "o2")}, "operator:eva"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateShipments(ctx, []order.Shipment{parcel("SHP-2", "o1")}, "operator:eva"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("packing a packed card again: %v, want queue.ErrState", err)
	}
	if _, err := s.Reproduce(ctx, "o2", "operator:eva", "scratched"); err != nil {
		t.Fatal(err)
	}
	sh, orders, err := s.Shipment(ctx, "SHP-1")
	if err != nil || len(orders) != 1 || orders[0].ID != "o1" {
		t.Fatalf("shipment after reproducing o2: %d orders, %v", len(orders), err)
	}
	if len(sh.Address) != 1 || sh.Address[0] != "Storgatan 1" || sh.CreatedBy != "operator:eva" {
		t.Fatalf("shipment read back: %+v", sh)
	}
	n, err := s.MarkShipped(ctx, "SHP-1", "operator:eva")
	if err != nil || n != 1 {
		t.Fatalf("mark shipped: %d, %v", n, err)
	}
	o1, _ := s.Get(ctx, "o1")
	if o1.State != order.Shipped {
		t.Fatalf("o1 state %s", o1.State)
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	var body map[string]any
	json.Unmarshal(notices[len(notices)-1].Payload, &body)
	if body["type"] != "order.shipped" || body["shipment_id"] != "SHP-1" || body["card_number"] != o1.CardNumber {
		t.Fatalf("shipped notice %v", body)
	}
	if _, err := s.MarkShipped(ctx, "SHP-1", "operator:eva"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("shipping twice: %v", err)
	}
	if _, err := s.MarkShipped(ctx, "SHP-404", "operator:eva"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("unknown shipment: %v", err)
	}
}

// A packing run is one transaction: when one parcel cannot be packed, none
// is, and every card stays unshipped for the next run.
func testPackingRunIsAtomic(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	for _, id := range []string{"o1", "o2", "o3"} {
		produce(t, s, id, false, c.now())
	}
	run := []order.Shipment{
		{ID: "SHP-A", Address: []string{"Storgatan 1"}, Cards: []order.ShipmentCard{{OrderID: "o1"}, {OrderID: "o2"}}},
		{ID: "SHP-B", Address: []string{"Kungsgatan 9"}, Cards: []order.ShipmentCard{{OrderID: "o3"}, {OrderID: "no-such-order"}}},
	}
	if err := s.CreateShipments(ctx, run, "operator:eva"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("run with a bad parcel: %v, want queue.ErrState", err)
	}
	if un, _ := s.Unshipped(ctx); len(un) != 3 {
		t.Fatalf("%d unshipped after a failed run, want all 3", len(un))
	}
	if list, _ := s.Shipments(ctx, 10); len(list) != 0 {
		t.Fatalf("%d shipments stored by a failed run", len(list))
	}
	run[1].Cards = run[1].Cards[:1]
	if err := s.CreateShipments(ctx, run, "operator:eva"); err != nil {
		t.Fatal(err)
	}
	orders, err := s.ShipmentOrders(ctx, []string{"SHP-A", "SHP-B"})
	if err != nil || len(orders) != 3 || orders[0].ShipmentID != "SHP-A" || orders[2].ShipmentID != "SHP-B" {
		t.Fatalf("orders of both parcels: %d, %v", len(orders), err)
	}
}

func testExpressFigures(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	start := c.now()
	produce(t, s, "on-time", true, start)
	Submit(t, s, "late", true, Holder(start))
	Submit(t, s, "standard", false, Holder(start))
	open, err := s.ExpressOpen(ctx)
	if err != nil || len(open) != 1 || open[0].ID != "late" {
		t.Fatalf("express open = %v, %v", open, err)
	}
	if n, _ := s.ExpressMissed(ctx); n != 0 {
		t.Fatalf("missed before the deadline = %d", n)
	}
	c.add(order.ExpressWindow + time.Minute)
	if n, _ := s.ExpressMissed(ctx); n != 1 {
		t.Fatalf("missed after the deadline = %d, want 1 (the one still open)", n)
	}
	if n, _ := s.ProducedSince(ctx, start); n != 1 {
		t.Fatalf("produced since start = %d", n)
	}
	before, _ := s.Changes(ctx)
	if _, err := s.Cancel(ctx, "standard", "", "operator:eva", "withdrawn"); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Changes(ctx); after == before {
		t.Fatal("Changes did not move after a cancel")
	}
}

func testClaimNoticesSkipsOtherSuppliers(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	produce(t, s, "o1", false, c.now())
	if due, _ := s.ClaimNotices(ctx, []string{"someone-else"}, 10, time.Minute); len(due) != 0 {
		t.Fatalf("due for another supplier: %d", len(due))
	}
	due, err := s.ClaimNotices(ctx, []string{"someone-else", "sup"}, 10, time.Minute)
	if err != nil || len(due) != 1 || due[0].Type != "order.produced" {
		t.Fatalf("due = %v, %v", due, err)
	}
}

func testUsersAndSessions(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	if err := s.AddUser(ctx, "eva", queue.RoleOperator, []byte("hash")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, role string }{{"eva", queue.RoleQA}, {"bad name", queue.RoleQA}, {"olle", "root"}} {
		if err := s.AddUser(ctx, tc.name, tc.role, []byte("h")); err == nil {
			t.Errorf("AddUser(%q, %q) accepted", tc.name, tc.role)
		}
	}
	if _, err := s.CreateSession(ctx, "cookie", "nobody", "csrf", time.Hour); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("session for an unknown user: %v", err)
	}
	if _, err := s.CreateSession(ctx, "cookie", "eva", "csrf", time.Hour); err != nil {
		t.Fatal(err)
	}
	sess, err := s.LookupSession(ctx, "cookie")
	if err != nil || sess.User != "eva" || sess.Role != queue.RoleOperator || sess.CSRF != "csrf" {
		t.Fatalf("lookup = %+v, %v", sess, err)
	}
	if _, err := s.LookupSession(ctx, "other"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("unknown cookie: %v", err)
	}
	c.add(2 * time.Hour)
	if _, err := s.LookupSession(ctx, "cookie"); !errors.Is(err, queue.ErrSessionExpired) {
		t.Fatalf("expired cookie: %v", err)
	}
	s.CreateSession(ctx, "cookie2", "eva", "c2", time.Hour)
	if err := s.SetPassword(ctx, "eva", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, "cookie2"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("session survived a password change: %v", err)
	}
	s.Audit(ctx, "operator:eva", "pause", "lunch")
	log, _ := s.AuditLog(ctx, 10)
	if len(log) != 1 || log[0].Actor != "operator:eva" || log[0].Action != "pause" {
		t.Fatalf("audit log %+v", log)
	}
}

// printing takes an approved order of supplier "sup" to printing with a
// chip bound, as the device worker leaves it when the printer will not take
// the job.
func printing(t *testing.T, s *queue.Store, id string, express bool, approvedAt time.Time) *queue.Claim {
	return toPrinting(t, s, queue.NewOrder{ID: id, Supplier: "sup", BodyHash: "h-" + id, Doc: []byte(`{}`), CardType: "id06",
		Express: express, Approvals: Holder(approvedAt), Photo: []byte("jpeg")}, "04A1B2C3")
}

// An order stuck at the reader or printer can be stopped by an operator:
// its blank is retired with the card number, the order fails with the
// operator's reason, the supplier is told, and a worker still holding it
// loses its claim. Orders elsewhere are not touched by this action.
func testOperatorStopsAnOrderInTheDevice(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	j := printing(t, s, "stuck-1", false, c.now())
	card := j.CardNumber
	o, err := s.SpoilAndFail(ctx, "stuck-1", "operator:eva", "printer refuses the job")
	if err != nil {
		t.Fatal(err)
	}
	if o.State != order.Failed || o.CardNumber != "" || o.ChipUID != "" || o.BlanksSpoiled != 1 {
		t.Fatalf("after stop: state %s card %q chip %q spoiled %d", o.State, o.CardNumber, o.ChipUID, o.BlanksSpoiled)
	}
	if numbers, _ := s.CardNumbers(ctx, "stuck-1"); numbers[card] != "spoiled" {
		t.Fatalf("card %s: %q, want spoiled", card, numbers[card])
	}
	if n, _ := s.SpoiledCount(ctx, time.Time{}); n != 1 {
		t.Fatalf("%d spoiled blanks recorded, want 1", n)
	}
	ev, _ := s.Events(ctx, "stuck-1")
	if last := ev[len(ev)-1]; last.Actor != "operator:eva" || last.State != order.Failed || !strings.Contains(last.Note, "printer refuses the job") || !strings.Contains(last.Note, card) {
		t.Fatalf("last event %+v", last)
	}
	if notices, _ := s.OrderNotices(ctx, "stuck-1"); notices[len(notices)-1].Type != "order.failed" {
		t.Fatalf("last notice %s", notices[len(notices)-1].Type)
	}
	if err := s.Produced(ctx, j, "printed"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("the worker's claim survived the stop: %v", err)
	}
	Submit(t, s, "queued-1", false, Holder(c.now()))
	if _, err := s.SpoilAndFail(ctx, "queued-1", "operator:eva", "x"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("stop of a queued order: %v, want queue.ErrState (cancel it instead)", err)
	}
	// Retried, it starts over on a new blank with a new number.
	if _, err := s.Retry(ctx, "stuck-1", "operator:eva", "fixed"); err != nil {
		t.Fatal(err)
	}
}

// A stage that refuses an order fails it at once with the reason, retiring
// the blank in hand; the order is not offered to a worker again.
func testRefusedOrderFailsInsteadOfLooping(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	j := printing(t, s, "refused-1", false, c.now())
	card := j.CardNumber
	if err := s.FailSpoiled(ctx, j, "the printer refused the job: bad id"); err != nil {
		t.Fatal(err)
	}
	o, _ := s.Get(ctx, "refused-1")
	if o.State != order.Failed || o.CardNumber != "" {
		t.Fatalf("state %s card %q", o.State, o.CardNumber)
	}
	if numbers, _ := s.CardNumbers(ctx, "refused-1"); numbers[card] != "spoiled" {
		t.Fatalf("card %s: %q", card, numbers[card])
	}
	c.add(time.Hour)
	if n, err := s.Rescue(ctx, false); err != nil || n != 0 {
		t.Fatalf("rescue found %d (%v)", n, err)
	}
	if _, err := s.Claim(ctx, "w", time.Minute, deviceMoves); !errors.Is(err, queue.ErrNothingToClaim) {
		t.Fatalf("a failed order was claimed again: %v", err)
	}
}
