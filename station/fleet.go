package station

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"id06/lane"
	"id06/queue"
)

// Register claims the station's name in the database before its leases
// are rescued. On a fleet database the name's previous process may still
// look alive (killed a moment ago): the station waits for its heartbeat to
// go stale rather than take over leases a live twin may hold. sole says no
// other station can use the database (SQLite under the data directory's
// lock), so there is nothing to wait for.
func Register(ctx context.Context, store *queue.Store, sole bool, log *slog.Logger) error {
	stale := queue.StationStale
	if sole {
		stale = 0
	}
	deadline := time.Now().Add(stale + 5*time.Second)
	for {
		seen, err := store.RegisterStation(ctx, stale)
		if !errors.Is(err, queue.ErrStationRunning) || time.Now().After(deadline) {
			return err
		}
		log.Warn("another process reported under this station's name lately; waiting for it to go quiet",
			"name", store.Station(), "last_seen", seen)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// heartbeatEvery is how often a station reports to the fleet and checks
// that its database answers, well within queue.StationStale.
const heartbeatEvery = time.Second

// heartbeat reports the station's state to the fleet each second until ctx
// ends. A database that does not answer pauses claims (the page and
// /readyz say so) until it answers again; a name taken over by another
// process pauses the station for good.
func (s *Station) heartbeat(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	var was error // the last beat's failure, logged once
	for {
		err := s.Store.Heartbeat(ctx, s.stationStatus("ready"))
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, queue.ErrStationRunning):
			if was == nil {
				s.log.Error("another process runs under this station's name; work paused", "name", s.Config.Name)
			}
			s.Pipeline.Pause("Another process runs under this station's name (" + s.Config.Name + "); give each station its own --name")
		case err != nil:
			if was == nil {
				s.log.Warn("database does not answer; claims paused", "err", err)
			}
			s.Pipeline.DatabaseFault("Database unavailable; claims paused until it answers")
		default:
			if was != nil {
				s.log.Info("database answers again; claims go on")
			}
			s.Pipeline.DatabaseFault("")
		}
		was = err
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.Store.Heartbeat(stop, s.stationStatus("stopped"))
			cancel()
			return
		case <-t.C:
		}
	}
}

// laneReport is how a station's heartbeat describes one lane to the fleet.
type laneReport struct {
	Name       string     `json:"name"`
	Reader     string     `json:"reader"`
	Printer    string     `json:"printer"`
	State      lane.State `json:"state"` // idle, working, paused, off
	Message    string     `json:"message,omitempty"`
	CardInHand string     `json:"card_in_hand,omitempty"` // order id
}

// stationStatus reports each lane as it is (its state, why it is paused,
// the card in its hand) and the station as paused when an operator paused
// it or every lane is paused or off, as /readyz says.
func (s *Station) stationStatus(running string) queue.StationStatus {
	paused, msg := s.Pipeline.Paused()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	snaps := s.Pipeline.Lanes(ctx)
	cancel()
	reports := make([]laneReport, len(snaps))
	var cards, stopped []string
	for i, l := range snaps {
		reports[i] = laneReport{Name: l.Name, Reader: l.Reader, Printer: l.Printer, State: l.State, Message: l.Reason}
		if l.Card != nil {
			reports[i].CardInHand = l.Card.Order
			cards = append(cards, l.Card.Order)
		}
		if l.State == lane.Paused || l.State == lane.Off {
			stopped = append(stopped, "lane "+l.Name+": "+cmp.Or(l.Reason, string(l.State)))
		}
	}
	status := running
	switch {
	case running != "ready":
	case paused:
		status = "paused: " + msg
	case len(stopped) > 0 && len(stopped) == len(snaps):
		status = "paused: " + strings.Join(stopped, "; ")
	}
	lanes, _ := json.Marshal(reports)
	return queue.StationStatus{Status: status, Lanes: lanes, CardInHand: strings.Join(cards, ",")}
}
