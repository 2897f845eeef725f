-- sqlite/005_fleet.sql in PostgreSQL's types.
ALTER TABLE orders ADD COLUMN station TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

CREATE TABLE stations (
    name         TEXT PRIMARY KEY,
    instance     TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    status       TEXT NOT NULL DEFAULT '',
    lanes        TEXT NOT NULL DEFAULT '[]',
    card_in_hand TEXT NOT NULL DEFAULT ''
);
