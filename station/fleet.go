package station

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"id06/queue"
)

// register claims the station's name in the database. On a fleet database
// the name's previous process may still look alive (killed a moment ago):
// the station waits for its heartbeat to go stale rather than take over
// leases a live twin may hold. On SQLite the data directory's lock already
// proves no other station uses the database.
func (s *Server) register(ctx context.Context) error {
	stale := nameStale
	if s.lock != nil {
		stale = 0
	}
	deadline := time.Now().Add(stale + 5*time.Second)
	for {
		seen, err := s.store.RegisterStation(ctx, stale)
		if !errors.Is(err, queue.ErrStationRunning) || time.Now().After(deadline) {
			return err
		}
		s.log.Warn("another process reported under this station's name lately; waiting for it to go quiet",
			"name", s.cfg.Name, "last_seen", seen)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// heartbeatEvery is how often a station reports to the fleet and checks
// that its database answers; a name silent for nameStale is free again.
const (
	heartbeatEvery = time.Second
	nameStale      = 10 * heartbeatEvery
)

// heartbeat reports the station's state to the fleet each second until ctx
// ends. A database that does not answer pauses claims (the page and
// /readyz say so) until it answers again; a name taken over by another
// process pauses the station for good.
func (s *Server) heartbeat(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		err := s.store.Heartbeat(ctx, s.stationStatus("ready"))
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, queue.ErrStationRunning):
			s.log.Error("another process took this station's name; stopping work", "name", s.cfg.Name)
			s.pipeline.Pause("Another process runs under this station's name (" + s.cfg.Name + "); give each station its own --name")
		case err != nil:
			s.log.Warn("database does not answer; claims paused", "err", err)
			s.pipeline.databaseFault("Database unavailable; claims paused until it answers")
		default:
			s.pipeline.databaseFault("")
		}
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.store.Heartbeat(stop, s.stationStatus("stopped"))
			cancel()
			return
		case <-t.C:
		}
	}
}

// lane is how a station's heartbeat describes one lane to the fleet.
type lane struct {
	Name       string `json:"name"`
	Reader     string `json:"reader"`
	Printer    string `json:"printer"`
	State      string `json:"state"` // idle, working, paused
	Message    string `json:"message,omitempty"`
	CardInHand string `json:"card_in_hand,omitempty"`
}

func (s *Server) stationStatus(running string) queue.StationStatus {
	paused, msg := s.pipeline.Paused()
	card := s.pipeline.CardInHand()
	l := lane{Name: "main", Reader: s.cfg.Reader, Printer: s.cfg.Printer, State: "idle", CardInHand: card}
	status := running
	switch {
	case paused:
		l.State, l.Message = "paused", msg
		if running == "ready" {
			status = "paused: " + msg
		}
	case card != "":
		l.State = "working"
	}
	lanes, _ := json.Marshal([]lane{l})
	return queue.StationStatus{Status: status, Lanes: lanes, CardInHand: card}
}
