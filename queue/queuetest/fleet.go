package queuetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"id06/order"
	"id06/queue"
)

// Two stations take the same order at once: one stores it, the other
// answers as for a repeated submission; a different body is a conflict.
func testSubmitSameIDConcurrently(t *testing.T, e *env) {
	a, _ := e.first()
	b := e.open("st-b")
	ctx := context.Background()
	for round := range 10 {
		id := fmt.Sprintf("race-%d", round)
		n := queue.NewOrder{ID: id, Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`), CardType: "id06", Photo: []byte("p")}
		var wg sync.WaitGroup
		created := make([]bool, 2)
		errs := make([]error, 2)
		for i, s := range []*queue.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, created[i], errs[i] = s.Submit(ctx, n, "api")
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || created[0] == created[1] {
			t.Fatalf("round %d: created %v, errors %v; want exactly one created and no error", round, created, errs)
		}
		n.BodyHash = "other"
		if _, _, err := b.Submit(ctx, n, "api"); !errors.Is(err, queue.ErrConflict) {
			t.Fatalf("different body: %v, want ErrConflict", err)
		}
	}
}

// Workers of two stations claim from one queue at once: every order is
// claimed exactly once and none is left behind.
func testClaimedOnceAcrossStations(t *testing.T, e *env) {
	a, c := e.first()
	b := e.open("st-b")
	ctx := context.Background()
	const orders = 60
	for i := range orders {
		Submit(t, a, fmt.Sprintf("o%03d", i), i%7 == 0, Holder(c.now().Add(time.Duration(i)*time.Second)))
	}
	var workers []claimer
	for w := range 8 {
		s := []*queue.Store{a, b}[w%2]
		owner := fmt.Sprintf("w%d", w)
		workers = append(workers, claimer{name: s.Station() + "/" + owner,
			claim:  func() (*queue.Claim, error) { return s.Claim(ctx, owner, time.Minute, photoMoves) },
			finish: func(j *queue.Claim) error { return s.PhotoPassed(ctx, j, nil, "ok") }})
	}
	claims := claimAll(t, workers, orders)
	for id, by := range claims {
		o, _ := a.Get(ctx, id)
		if o.State != order.Ready || o.Station != strings.Split(by[0], "/")[0] {
			t.Errorf("%s: state %s station %q, claimed by %v", id, o.State, o.Station, by)
		}
	}
}

// claimer is one worker of claimAll: claim takes an order, finish ends
// its part in it; name says who claimed, in the answer.
type claimer struct {
	name   string
	claim  func() (*queue.Claim, error)
	finish func(*queue.Claim) error
}

// claimAll runs the workers at once until nothing is left to claim and
// returns who claimed each order, failing unless each of the orders was
// claimed exactly once.
func claimAll(t *testing.T, workers []claimer, orders int) map[string][]string {
	t.Helper()
	var mu sync.Mutex
	claims := map[string][]string{}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := w.claim()
				if errors.Is(err, queue.ErrNothingToClaim) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				claims[j.ID] = append(claims[j.ID], w.name)
				mu.Unlock()
				if err := w.finish(j); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(claims) != orders {
		t.Fatalf("%d of %d orders claimed", len(claims), orders)
	}
	for id, by := range claims {
		if len(by) != 1 {
			t.Errorf("%s claimed %d times: %v", id, len(by), by)
		}
	}
	return claims
}

// An operator's move drops a worker's lease; the worker cannot write after it.
func testOperatorMovesAreGuarded(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	Submit(t, s, "o1", false, Holder(c.now()))
	j, err := s.Claim(ctx, "w", time.Minute, photoMoves)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.NeedsFixPhoto(ctx, j, []order.Reason{{Code: "blurred", MessageEN: "blurred", MessageSV: "suddig"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retry(ctx, "o1", "operator:eva", "again"); !errors.Is(err, queue.ErrState) {
		t.Fatalf("retry of an order that did not fail: %v", err)
	}
	if _, err := s.ReplacePhoto(ctx, "o1", "sup", []byte("new"), "api"); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Blob(ctx, "o1", "photo"); string(b) != "new" {
		t.Fatalf("photo = %q", b)
	}
	j, err = s.Claim(ctx, "w", time.Minute, photoMoves)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Fail(ctx, j, "portrait could not be encoded"); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx, j, time.Minute); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("extending a failed order's lease: %v", err)
	}
	o, err := s.Retry(ctx, "o1", "operator:eva", "printer fixed")
	if err != nil || o.State != order.Queued || o.LeaseOwner != "" {
		t.Fatalf("retry: %v %+v", err, o)
	}
	if _, err := s.Cancel(ctx, "o1", "other-supplier", "api", "x"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("another supplier cancelled: %v", err)
	}
	if counts, _ := s.CountByState(ctx); counts[order.Queued] != 1 {
		t.Fatalf("counts = %v", counts)
	}
}

// Leases belong to named stations. A station's start takes back its own
// leases, live or not, and never another's live one; an expired lease of
// another station is freed unless the order's chip is bound to a blank
// (that card is inside the other station's machine).
func testLeasesBelongToStations(t *testing.T, e *env) {
	a, c := e.first()
	b := e.open("st-b")
	ctx := context.Background()
	Submit(t, a, "photo", false, Holder(c.now()))
	Submit(t, a, "chip", false, Holder(c.now().Add(time.Second)))
	pj, err := a.Claim(ctx, "w", time.Minute, photoMoves)
	if err != nil || pj.ID != "photo" {
		t.Fatalf("claim: %v %v", pj, err)
	}
	cj, err := a.Claim(ctx, "w2", time.Minute, map[order.State]order.State{order.Queued: order.Encoding})
	if err != nil || cj.ID != "chip" {
		t.Fatal(err)
	}
	if err := a.AllocateCard(ctx, cj, "BB"); err != nil {
		t.Fatal(err)
	}
	if err := a.RecordChip(ctx, cj, "04AA"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Rescue(ctx, true); err != nil || n != 0 {
		t.Fatalf("station b's start freed %d of a's live leases (%v)", n, err)
	}
	c.add(2 * time.Minute)
	if n, err := b.Rescue(ctx, false); err != nil || n != 1 {
		t.Fatalf("b freed %d expired leases (%v), want 1: the photo job, not the bound chip", n, err)
	}
	if o, _ := b.Get(ctx, "chip"); o.LeaseOwner == "" || o.Station != "st-a" {
		t.Fatalf("bound chip's order left its station: %+v", o)
	}
	if j, err := b.Claim(ctx, "w", time.Minute, photoMoves); err != nil || j.ID != "photo" || j.Station != "st-b" {
		t.Fatalf("b takes over the photo job: %v %v", j, err)
	}
	// Station a restarts: it takes its own order back at once.
	a2 := e.open("st-a")
	if n, err := a2.Rescue(ctx, true); err != nil || n != 1 {
		t.Fatalf("a's restart freed %d (%v), want its own bound order", n, err)
	}
	j, err := a2.Claim(ctx, "w", time.Minute, deviceMoves)
	if err != nil || j.ID != "chip" || j.ChipUID != "04AA" || j.CardNumber == "" {
		t.Fatalf("a resumes its chip: %+v %v", j, err)
	}
	if err := a.Produced(ctx, cj, "stale worker"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("the old run's worker wrote after the restart: %v", err)
	}
	// The sole station of a database (SQLite under its directory's lock)
	// takes back every lease at start, whatever name took it.
	sole, err := queue.Open(e.dsn, queue.WithClock(e.clock.now), queue.WithStation("renamed"), queue.WithSoleStation())
	if err != nil {
		t.Fatal(err)
	}
	defer sole.Close()
	if n, err := sole.Rescue(ctx, true); err != nil || n != 2 {
		t.Fatalf("the sole station freed %d leases (%v), want both live ones (a2's and b's)", n, err)
	}
}

// Card numbers allocated by many stations at once are all distinct.
func testCardNumbersDistinctAcrossStations(t *testing.T, e *env) {
	a, c := e.first()
	stores := []*queue.Store{a, e.open("st-b"), e.open("st-c")}
	ctx := context.Background()
	const orders = 30
	for i := range orders {
		Submit(t, a, fmt.Sprintf("o%02d", i), false, Holder(c.now()))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := s.Claim(ctx, "w", time.Minute, map[order.State]order.State{order.Queued: order.Encoding})
				if errors.Is(err, queue.ErrNothingToClaim) {
					return
				}
				if err == nil {
					err = s.AllocateCard(ctx, j, "BB")
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := seen[j.CardNumber]; dup {
					t.Errorf("card %s given to %s and %s", j.CardNumber, prev, j.ID)
				}
				seen[j.CardNumber] = j.ID
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != orders {
		t.Fatalf("%d card numbers for %d orders", len(seen), orders)
	}
}

// A notice is taken by one station at a time; a station that dies holding
// it only delays it (at least once, never lost).
func testNoticeHasOneClaimerAtATime(t *testing.T, e *env) {
	a, c := e.first()
	b := e.open("st-b")
	ctx := context.Background()
	produce(t, a, "o1", false, c.now())
	got, err := a.ClaimNotices(ctx, []string{"sup"}, 10, time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("a claims: %v %v", got, err)
	}
	if again, _ := b.ClaimNotices(ctx, []string{"sup"}, 10, time.Minute); len(again) != 0 {
		t.Fatalf("b took a notice a holds: %v", again)
	}
	c.add(2 * time.Minute) // a died with it
	taken, err := b.ClaimNotices(ctx, []string{"sup"}, 10, time.Minute)
	if err != nil || len(taken) != 1 || taken[0].EventID != got[0].EventID {
		t.Fatalf("b takes over: %v %v", taken, err)
	}
	if err := b.NoticeDelivered(ctx, taken[0].ID); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Minute)
	if rest, _ := a.ClaimNotices(ctx, []string{"sup"}, 10, time.Minute); len(rest) != 0 {
		t.Fatalf("a delivered notice is due again: %v", rest)
	}
	if pending, dead, _ := a.OutboxCounts(ctx); pending != 0 || dead != 0 {
		t.Fatalf("outbox counts %d pending %d dead", pending, dead)
	}
}

func testNoticeRetriesAndDeath(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	produce(t, s, "o1", false, c.now())
	n, _ := s.ClaimNotices(ctx, []string{"sup"}, 1, time.Minute)
	if len(n) != 1 {
		t.Fatal("no notice")
	}
	var body map[string]any
	if err := json.Unmarshal(n[0].Payload, &body); err != nil || body["event_id"] != n[0].EventID || body["order_id"] != "o1" {
		t.Fatalf("payload %s: %v", n[0].Payload, err)
	}
	if err := s.NoticeFailed(ctx, n[0].ID, "HTTP 500", c.now().Add(10*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	c.add(5 * time.Minute)
	if due, _ := s.ClaimNotices(ctx, []string{"sup"}, 1, time.Minute); len(due) != 0 {
		t.Fatal("retried before its backoff")
	}
	c.add(6 * time.Minute)
	due, _ := s.ClaimNotices(ctx, []string{"sup"}, 1, time.Minute)
	if len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "HTTP 500" {
		t.Fatalf("retry: %+v", due)
	}
	before, _ := s.Changes(ctx)
	if err := s.NoticeFailed(ctx, due[0].ID, "HTTP 500", c.now(), true); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Changes(ctx); after == before {
		t.Fatal("Changes did not move when a notice died")
	}
	if pending, dead, _ := s.OutboxCounts(ctx, "sup"); pending != 0 || dead != 1 {
		t.Fatalf("counts %d pending %d dead", pending, dead)
	}
	if d, _ := s.RecentNotices(ctx, 10); len(d) != 1 || !d[0].Dead {
		t.Fatalf("recent notices %+v", d)
	}
	if err := s.Redeliver(ctx, due[0].ID); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ClaimNotices(ctx, []string{"sup"}, 1, time.Minute); len(again) != 1 || again[0].Attempts != 0 {
		t.Fatalf("redelivered: %+v", again)
	}
	if err := s.NoticeDelivered(ctx, due[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Redeliver(ctx, due[0].ID); err == nil {
		t.Fatal("redelivered a delivered notice")
	}
	if recent, _ := s.RecentNotices(ctx, 10); len(recent) != 1 || !recent[0].Delivered {
		t.Fatalf("recent %+v", recent)
	}
}

func testTokens(t *testing.T, e *env) {
	s, _ := e.first()
	ctx := context.Background()
	if err := s.AddToken(ctx, "sup", "st_secret", []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToken(ctx, "sup", "st_secret", []string{"orders", "operator"}); err != nil {
		t.Fatalf("adding a token again: %v", err)
	}
	tok, err := s.LookupToken(ctx, "st_secret")
	if err != nil || tok.Supplier != "sup" || !slices.Equal(tok.Scopes, []string{"orders", "operator"}) {
		t.Fatalf("lookup = %+v, %v", tok, err)
	}
	if _, err := s.LookupToken(ctx, "st_other"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

func testBlobs(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	Submit(t, s, "o1", false, Holder(c.now()))
	if _, err := s.Blob(ctx, "o1", "portrait"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("absent blob: %v", err)
	}
	j, err := s.Claim(ctx, "w", time.Minute, photoMoves)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := s.PutBlobs(ctx, j, map[string][]byte{"face_pdf": big, "portrait": {0, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlobs(ctx, j, map[string][]byte{"portrait": {3}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Blob(ctx, "o1", "face_pdf"); !slices.Equal(b, big) {
		t.Fatal("2 MB blob changed on the way")
	}
	if b, _ := s.Blob(ctx, "o1", "portrait"); !slices.Equal(b, []byte{3}) {
		t.Fatalf("replaced blob = %v", b)
	}
	kinds, _ := s.BlobKinds(ctx, "o1")
	if len(kinds) != 3 || !kinds["photo"] || !kinds["face_pdf"] {
		t.Fatalf("kinds = %v", kinds)
	}
	if _, err := s.Cancel(ctx, "o1", "sup", "api", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlobs(ctx, j, map[string][]byte{"portrait": {4}}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("blobs written after losing the lease: %v", err)
	}
}

func testListAndSearch(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	Submit(t, s, "no-holder", false, nil) // a document without the fields searched
	for i, name := range []string{"Anna Łukasz-Svensson", "Bo Ek", "Anneli Berg"} {
		first, last, _ := strings.Cut(name, " ")
		doc, _ := json.Marshal(map[string]any{"holder": map[string]string{"first_name": first, "last_name": last, "print_name": name}})
		_, _, err := s.Submit(ctx, queue.NewOrder{ID: fmt.Sprintf("o%d", i), Supplier: []string{"sup", "sup", "other"}[i],
			BodyHash: "h", Doc: doc, HolderNames: []string{name, first + " " + last}, CardType: "id06", Approvals: Holder(c.now()), Photo: []byte("p")}, "api")
		if err != nil {
			t.Fatal(err)
		}
	}
	ids := func(f queue.Filter) []string {
		t.Helper()
		os, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range os {
			out = append(out, o.ID)
		}
		return out
	}
	for _, tc := range []struct {
		f    queue.Filter
		want []string
	}{
		{queue.Filter{}, []string{"no-holder", "o0", "o1", "o2"}},
		{queue.Filter{Supplier: "sup"}, []string{"no-holder", "o0", "o1"}},
		{queue.Filter{After: "o0", Limit: 1}, []string{"o1"}},
		{queue.Filter{State: order.AwaitingApproval}, []string{"no-holder"}},
		{queue.Filter{State: order.Queued, Supplier: "other"}, []string{"o2"}},
		{queue.Filter{Search: "ann"}, []string{"o0", "o2"}}, // case does not matter
		{queue.Filter{Search: "łukasz"}, []string{"o0"}},    // in the print name
		{queue.Filter{Search: "Bo Ek"}, []string{"o1"}},     // first and last name
		{queue.Filter{Search: "o2"}, []string{"o2"}},        // order id
		{queue.Filter{Search: "100%"}, nil},                 // LIKE characters are literal
		{queue.Filter{State: order.Shipped}, nil},
	} {
		if got := ids(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	if a, _ := s.Approvals(ctx, "o0"); len(a) != 1 || !a[0].At.Equal(c.now()) {
		t.Fatalf("approvals %+v", a)
	}
}

func testPhotoVerdicts(t *testing.T, e *env) {
	s, c := e.first()
	ctx := context.Background()
	Submit(t, s, "o1", false, Holder(c.now()))
	reasons := []order.Reason{{Code: "eyes_closed", MessageEN: "eyes closed", MessageSV: "ögonen stängda"}}
	o, err := s.OverridePhoto(ctx, "o1", "fail", "operator:eva", "looks away", reasons)
	if err != nil || o.State != order.NeedsFix || len(o.Reasons) != 1 || o.Reasons[0] != reasons[0] {
		t.Fatalf("fail verdict: %v %+v", err, o)
	}
	if _, err := s.OverridePhoto(ctx, "o1", "maybe", "operator:eva", "", nil); !errors.Is(err, queue.ErrState) {
		t.Fatalf("bad verdict: %v", err)
	}
	o, err = s.OverridePhoto(ctx, "o1", "pass", "operator:eva", "fine after all", nil)
	if err != nil || o.State != order.Queued || o.PhotoOverride != "pass" || len(o.Reasons) != 0 {
		t.Fatalf("pass verdict: %v %+v", err, o)
	}
	notices, _ := s.OrderNotices(ctx, "o1")
	if len(notices) != 1 || notices[0].Type != "order.needs_fix" {
		t.Fatalf("notices %+v", notices)
	}
}

func testStations(t *testing.T, e *env) {
	a, c := e.first()
	ctx := context.Background()
	if _, err := a.RegisterStation(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	lanes := []byte(`[{"name":"main","state":"idle"}]`)
	if err := a.Heartbeat(ctx, queue.StationStatus{Status: "ready", Lanes: lanes, CardInHand: "o7"}); err != nil {
		t.Fatal(err)
	}
	b := e.open("st-b")
	if _, err := b.RegisterStation(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// A second process under a's name while a is alive is refused …
	twin := e.open("st-a")
	c.add(10 * time.Second)
	if seen, err := twin.RegisterStation(ctx, 30*time.Second); !errors.Is(err, queue.ErrStationRunning) || seen.IsZero() {
		t.Fatalf("twin registered: %v", err)
	}
	// … and accepted once a has been silent for longer than stale.
	c.add(30 * time.Second)
	if _, err := twin.RegisterStation(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.Heartbeat(ctx, queue.StationStatus{Status: "ready"}); !errors.Is(err, queue.ErrStationRunning) {
		t.Fatalf("the displaced process's heartbeat: %v", err)
	}
	// A station whose record went missing (a restored database) registers
	// again on its next heartbeat.
	c2 := e.open("st-c")
	if err := c2.Heartbeat(ctx, queue.StationStatus{Status: "ready"}); err != nil {
		t.Fatalf("heartbeat without a record: %v", err)
	}
	if err := twin.Heartbeat(ctx, queue.StationStatus{Status: "paused: printer out of cards", Lanes: lanes}); err != nil {
		t.Fatal(err)
	}
	list, err := b.Stations(ctx)
	if err != nil || len(list) != 3 || list[0].Name != "st-a" || list[1].Name != "st-b" || list[2].Name != "st-c" {
		t.Fatalf("stations = %+v, %v", list, err)
	}
	if st := list[0]; st.Status != "paused: printer out of cards" || string(st.Lanes) != string(lanes) ||
		st.CardInHand != "" || !st.LastSeen.Equal(c.now()) || !st.StartedAt.Equal(c.now()) {
		t.Fatalf("st-a = %+v", st)
	}
}

// Stations starting at once on a new database migrate it once between them.
func testMigrationsOnceUnderConcurrentOpens(t *testing.T, e *env) {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := queue.Open(e.dsn, queue.WithStation(fmt.Sprintf("st-%d", i)))
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, _ := e.first()
	versions, err := s.Migrations(context.Background())
	if err != nil || len(versions) < 3 || versions[0] != "001_init" || !slices.IsSorted(versions) {
		t.Fatalf("migrations = %v, %v", versions, err)
	}
	Submit(t, s, "o1", false, nil)
}
