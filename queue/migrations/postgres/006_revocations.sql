-- sqlite/006_revocations.sql in PostgreSQL's types.
-- Every certificate issued for a chip, recorded before the chip gets it, so
-- that a spoiled blank's, a replaced card's or a lost card's certificates
-- can be put on the CRL.
CREATE TABLE issued_certs (
    serial      TEXT PRIMARY KEY,             -- lower-case hex, as in the CRL
    order_id    TEXT NOT NULL,
    card_number TEXT NOT NULL,
    slot        TEXT NOT NULL,                -- '9a' PIV Authentication, '9e' Card Authentication
    not_after   BIGINT NOT NULL,             -- unix ms; an expired certificate leaves the CRL
    issued_at   BIGINT NOT NULL
);
CREATE INDEX issued_certs_order ON issued_certs (order_id);
CREATE INDEX issued_certs_card ON issued_certs (card_number);

-- A certificate on the CRL. Never deleted: revocation is for good.
CREATE TABLE revocations (
    serial TEXT PRIMARY KEY REFERENCES issued_certs(serial),
    reason TEXT NOT NULL,                     -- lost, stolen, damaged, holder_left, superseded, spoiled
    at     BIGINT NOT NULL,                  -- unix ms
    actor  TEXT NOT NULL
);
CREATE INDEX revocations_at ON revocations (at);

-- CRL numbers only grow (RFC 5280 §5.2.3). Card numbers come from a
-- sequence here; CRLs are rare, so a locked counter row is enough for them.
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('crl_number', 0);
