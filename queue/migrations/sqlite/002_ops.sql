-- Operator accounts, their sessions, the station-level audit trail (actions
-- that concern no single order: logins, pause, resume) and shipments.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('operator', 'qa', 'admin')),
    password_hash BLOB NOT NULL,              -- bcrypt
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,              -- SHA-256 of the cookie value; the cookie itself is never stored
    user_name  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);

-- A parcel of produced cards; its cards are the orders whose shipment_id
-- names it, so a card taken out for re-production leaves the parcel.
CREATE TABLE shipments (
    id         TEXT PRIMARY KEY,
    express    INTEGER NOT NULL DEFAULT 0,
    doc        BLOB NOT NULL,                 -- addressing as JSON (orderer, address lines, cost centre, department)
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    shipped_at INTEGER,
    shipped_by TEXT
);
CREATE INDEX orders_shipment ON orders (shipment_id);
CREATE INDEX orders_deadline ON orders (deadline) WHERE deadline IS NOT NULL;
