package queue

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// StationStatus is what a station reports about itself on each heartbeat.
type StationStatus struct {
	Status     string // "ready", or why it is not: "paused: …", "stopped"
	Lanes      []byte // JSON array: the station's lanes and their state
	CardInHand string // order ids of the cards in the lanes' hands, comma-separated; "" when none
}

// StationInfo is one station of the fleet as its last heartbeat left it.
type StationInfo struct {
	Name      string
	StartedAt time.Time
	LastSeen  time.Time
	StationStatus
}

// StationStale is how long a station may go without reporting before the
// fleet counts it as gone and its name is free for another process.
const StationStale = 10 * time.Second

// Live reports whether the station reported within StationStale of now.
func (si StationInfo) Live(now time.Time) bool { return now.Sub(si.LastSeen) < StationStale }

// ErrStationRunning is returned when another process holds this station's
// name: two stations of one name would take each other's leases.
var ErrStationRunning = errors.New("a station of this name is running")

// RegisterStation claims this store's station name for this process. A
// name whose last heartbeat is younger than stale belongs to a live
// process: the answer is then ErrStationRunning with that heartbeat's time
// (a station killed a moment ago looks alive until stale has passed).
func (s *Store) RegisterStation(ctx context.Context, stale time.Duration) (lastSeen time.Time, err error) {
	now := s.now()
	res, err := s.exec(ctx, `INSERT INTO stations (name, instance, started_at, last_seen, status) VALUES (?, ?, ?, ?, 'starting')
		ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, started_at = excluded.started_at,
			last_seen = excluded.last_seen, status = excluded.status, card_in_hand = ''
		WHERE stations.instance = excluded.instance OR stations.last_seen <= ?`,
		s.station, s.instance, ms(now), ms(now), ms(now.Add(-stale)))
	if err != nil {
		return time.Time{}, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return now, nil
	}
	var seen int64
	if err := s.queryRow(ctx, `SELECT last_seen FROM stations WHERE name = ?`, s.station).Scan(&seen); err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(seen).UTC(), fmt.Errorf("%w: %q last reported at %s", ErrStationRunning, s.station, time.UnixMilli(seen).UTC().Format(time.RFC3339))
}

// Heartbeat records that this station is alive and what it is doing. A
// name whose record is gone, or silent for StationStale, is registered
// again; ErrStationRunning means another live process holds it.
func (s *Store) Heartbeat(ctx context.Context, st StationStatus) error {
	lanes := st.Lanes
	if lanes == nil {
		lanes = []byte("[]")
	}
	beat := func() (bool, error) {
		res, err := s.exec(ctx, `UPDATE stations SET last_seen = ?, status = ?, lanes = ?, card_in_hand = ? WHERE name = ? AND instance = ?`,
			ms(s.now()), st.Status, string(lanes), st.CardInHand, s.station, s.instance)
		if err != nil {
			return false, err
		}
		n, _ := res.RowsAffected()
		return n == 1, nil
	}
	ok, err := beat()
	if err != nil || ok {
		return err
	}
	if _, err := s.RegisterStation(ctx, StationStale); err != nil {
		return err
	}
	_, err = beat()
	return err
}

// Stations lists every station that ever reported, by name.
func (s *Store) Stations(ctx context.Context) ([]StationInfo, error) {
	rows, err := s.query(ctx, `SELECT name, started_at, last_seen, status, lanes, card_in_hand FROM stations ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StationInfo
	for rows.Next() {
		var si StationInfo
		var started, seen int64
		var lanes string
		if err := rows.Scan(&si.Name, &started, &seen, &si.Status, &lanes, &si.CardInHand); err != nil {
			return nil, err
		}
		si.StartedAt, si.LastSeen, si.Lanes = time.UnixMilli(started).UTC(), time.UnixMilli(seen).UTC(), []byte(lanes)
		out = append(out, si)
	}
	return out, rows.Err()
}
