package ui

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"id06/order"
)

// dashboard is the live summary of the floor.
type dashboard struct {
	Counts        []stateCount
	Express       []expressRow
	ProducedToday int
	SpoiledToday  int
	Reader        string
	PrinterReady  bool
	PrinterMsg    string
	Hooks         int  // suppliers with a webhook
	Pending, Dead int  // their notices
	DevCA         bool // cards signed by the development CA
	DevSeal       bool // PIN/PUK sealed to the development age key
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
	d := dashboard{Reader: u.devices.Reader.Name(), DevCA: u.keys.DevelopmentCA, DevSeal: u.keys.DevelopmentSeal}
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
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st := u.devices.Printer.Status(sctx)
	cancel()
	d.PrinterReady, d.PrinterMsg = st.Ready, st.Message
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
