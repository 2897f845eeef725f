-- Stations: leases belong to a named station, the station that last worked
-- an order is kept (the order page says who holds or made it), each outbox
-- notice is taken by one station at a time, and every station reports in.
ALTER TABLE orders ADD COLUMN station TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

CREATE TABLE stations (
    name         TEXT PRIMARY KEY,
    instance     TEXT NOT NULL,               -- the running process; a restart brings a new one
    started_at   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT '',    -- ready, paused: why, stopped
    lanes        TEXT NOT NULL DEFAULT '[]',  -- JSON: the station's lanes and their state
    card_in_hand TEXT NOT NULL DEFAULT ''     -- order id of the card in the encoder or printer
);
