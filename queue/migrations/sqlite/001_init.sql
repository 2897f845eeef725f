-- Orders are both the supplier's order and the production job: one row, one
-- state machine, so a state change and its lease can never disagree.
CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    supplier        TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    doc             BLOB NOT NULL,            -- the order JSON as accepted, without photo and logo (those are in blobs)
    card_type       TEXT NOT NULL,
    express         INTEGER NOT NULL DEFAULT 0,
    trade_org_required INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    approved_at     INTEGER,                  -- unix ms of the holder approval; NULL until approved
    deadline        INTEGER,                  -- express: approval + 2 h
    valid_until     TEXT,
    card_number     TEXT,
    card_uuid       TEXT,
    chip_uid        TEXT,
    cert_serial     TEXT,
    sealed_secrets  BLOB,
    reasons         TEXT NOT NULL DEFAULT '[]',
    photo_override  TEXT,                     -- 'pass' or 'fail' set by an operator
    attempt         INTEGER NOT NULL DEFAULT 0,
    blanks_spoiled  INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    shipment_id     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    produced_at     INTEGER
);
CREATE INDEX orders_claim ON orders (state, express DESC, approved_at, created_at);
CREATE INDEX orders_card_number ON orders (card_number);
CREATE INDEX orders_chip_uid ON orders (chip_uid);

CREATE TABLE approvals (
    order_id TEXT NOT NULL REFERENCES orders(id),
    kind     TEXT NOT NULL,
    method   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (order_id, kind, method, at)
);

-- Photo, logo and the products of each stage, kept apart from the hot row.
CREATE TABLE blobs (
    order_id TEXT NOT NULL REFERENCES orders(id),
    kind     TEXT NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (order_id, kind)
);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    at       INTEGER NOT NULL,
    state    TEXT NOT NULL,
    actor    TEXT NOT NULL,
    note     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_order ON events (order_id, id);

-- Upstream notifications, written in the transaction of the state change.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    supplier     TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    delivered_at INTEGER,
    dead         INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (delivered_at, dead, next_attempt);

-- Every card number ever handed out; a number is never reused.
CREATE TABLE card_numbers (
    number       TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL,
    status       TEXT NOT NULL,               -- allocated, spoiled, produced
    chip_uid     TEXT,
    allocated_at INTEGER NOT NULL
);
CREATE INDEX card_numbers_order ON card_numbers (order_id);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('card_number', 0);

CREATE TABLE spoiled_blanks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    TEXT NOT NULL,
    card_number TEXT,
    chip_uid    TEXT,
    reason      TEXT NOT NULL,
    at          INTEGER NOT NULL
);

CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,              -- SHA-256 of the bearer token
    supplier   TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT 'orders',
    created_at INTEGER NOT NULL
);
