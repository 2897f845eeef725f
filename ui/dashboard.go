package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/lane"
	"id06/order"
	"id06/pipeline"
)

// dashboard is the live summary of the floor.
type dashboard struct {
	Counts        []stateCount
	Express       []expressRow
	ProducedToday int
	SpoiledToday  int
	Lanes         []lane.Snapshot
	Hooks         int  // suppliers with a webhook
	Pending, Dead int  // their notices
	DevCA         bool // cards signed by the development CA
	DevSeal       bool // PIN/PUK sealed to the development age key
	Stations      []stationRow
}

// stationRow is one station of the fleet (on SQLite, this one) with its
// lanes as its last heartbeat described them.
type stationRow struct {
	Name     string
	Live     bool
	Status   string
	LastSeen time.Time
	Lanes    []laneRow // each with the card in its hand
}

type laneRow struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Message    string `json:"message"`
	CardInHand string `json:"card_in_hand"`
}

type stateCount struct {
	State order.State
	N     int
}

type expressRow struct {
	ID       string
	State    order.State
	Deadline time.Time
	Left     string
	Overdue  bool
}

func (u *UI) uiDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := dashboard{DevCA: u.keys.DevelopmentCA, DevSeal: u.keys.DevelopmentSeal}
	counts, err := u.store.CountByState(ctx)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, st := range order.States {
		d.Counts = append(d.Counts, stateCount{st, counts[st]})
	}
	now := u.now()
	express, err := u.store.ExpressOpen(ctx)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, o := range express {
		left := o.Deadline.Sub(now)
		d.Express = append(d.Express, expressRow{ID: o.ID, State: o.State, Deadline: o.Deadline, Left: fmtLeft(left), Overdue: left < 0})
	}
	y, m, day := now.In(u.loc).Date()
	midnight := time.Date(y, m, day, 0, 0, 0, 0, u.loc)
	if d.ProducedToday, err = u.store.ProducedSince(ctx, midnight); err != nil {
		u.fail(w, r, err)
		return
	}
	if d.SpoiledToday, err = u.store.SpoiledCount(ctx, midnight); err != nil {
		u.fail(w, r, err)
		return
	}
	if names := u.deliverer.Suppliers(); len(names) > 0 {
		d.Hooks = len(names)
		if d.Pending, d.Dead, err = u.store.OutboxCounts(ctx, names...); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	stations, err := u.store.Stations(ctx)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, st := range stations {
		row := stationRow{Name: st.Name, Live: st.Live(now), Status: st.Status, LastSeen: st.LastSeen}
		// Lanes are what the station said; one it cannot read shows none.
		json.Unmarshal(st.Lanes, &row.Lanes)
		d.Stations = append(d.Stations, row)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	d.Lanes = u.pipeline.Lanes(sctx)
	cancel()
	u.render(w, r, http.StatusOK, "dashboard", u.newPage(w, r, "nav_dashboard", d))
}

func fmtLeft(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%s%d:%02d", sign, int(d.Hours()), int(d.Minutes())%60)
}

func (u *UI) uiPause(w http.ResponseWriter, r *http.Request) {
	msg := strings.TrimSpace(r.PostFormValue("message"))
	if msg == "" {
		msg = "Paused by " + sessionOf(r.Context()).User
	}
	u.pipeline.Pause(msg)
	u.audit(r.Context(), actorOf(r.Context()), "pause", msg)
	u.log.Info("station paused by an operator", "actor", actorOf(r.Context()))
	u.Changed()
	back(w, r, "/ui/", "paused")
}

func (u *UI) uiResume(w http.ResponseWriter, r *http.Request) {
	u.pipeline.Resume()
	u.audit(r.Context(), actorOf(r.Context()), "resume", "")
	u.log.Info("station resumed by an operator", "actor", actorOf(r.Context()))
	u.Changed()
	back(w, r, "/ui/", "resumed")
}

// uiLaneAction is an operator's pause, resume, drain or spoil of one lane.
func (u *UI) uiLaneAction(w http.ResponseWriter, r *http.Request) {
	ctx, name, action, actor := r.Context(), chi.URLParam(r, "name"), chi.URLParam(r, "action"), actorOf(r.Context())
	reason, err := u.pipeline.OperateLane(ctx, name, action, actor, sessionOf(ctx).User, r.PostFormValue("reason"))
	if errors.Is(err, pipeline.ErrSpoilReason) {
		u.uiError(w, r, http.StatusUnprocessableEntity, "err_reason")
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.audit(ctx, actor, "lane_"+action, strings.TrimSpace(name+" "+reason))
	u.log.Info("lane action", "lane", name, "action", action, "actor", actor)
	u.pipeline.Wake()
	u.Changed()
	back(w, r, "/ui/", "lane_"+action)
}
