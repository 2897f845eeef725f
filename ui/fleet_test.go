package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"id06/queue"
	"id06/queue/queuetest"
	"id06/station/stationtest"
)

// The dashboard shows every station of the fleet with its lanes and the
// card in its hand, a silent one as not reporting; the order page says
// which station holds the order.
func TestDashboardShowsTheFleet(t *testing.T) {
	s, hs := testPage(t, nil)
	ctx := context.Background()
	stationtest.AddUser(t, s.store, "eva", queue.RoleOperator, stationtest.Password)
	queuetest.Printing(t, s.store, "held-1")
	// Two more stations on the same database: one reporting, one gone quiet.
	for _, st := range []struct {
		name, lanes, card string
		ago               time.Duration
	}{
		{"floor-2", `[{"name":"evolis-1","state":"working","card_in_hand":"held-1"},{"name":"evolis-2","state":"working","card_in_hand":"held-2"}]`, "held-1,held-2", 0},
		{"floor-3", `[{"name":"main","state":"paused","message":"out of cards"}]`, "", time.Minute},
	} {
		clock := func() time.Time { return time.Now().Add(-st.ago) }
		other, err := queue.Open(s.dbPath, queue.WithStation(st.name), queue.WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.RegisterStation(ctx, queue.StationStale); err != nil {
			t.Fatal(err)
		}
		if err := other.Heartbeat(ctx, queue.StationStatus{Status: "ready", Lanes: []byte(st.lanes), CardInHand: st.card}); err != nil {
			t.Fatal(err)
		}
	}
	b := stationtest.NewBrowser(t, hs.URL)
	b.LoggedIn("eva", stationtest.Password)
	page := b.Get("/ui/?lang=en").Body
	for _, want := range []string{`id="station-floor-2"`, "evolis-1: working", `href="/ui/orders/held-1"`, `href="/ui/orders/held-2"`,
		`id="station-floor-3"`, "not reporting", "main: paused · out of cards"} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	o := b.Get("/ui/orders/held-1").Body
	if !strings.Contains(o, "Held by") || !strings.Contains(o, `id="order-station"`) {
		t.Errorf("order page does not say who holds the order")
	}
}
