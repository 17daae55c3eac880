-- idstation central store, PostgreSQL: schema 1. Times are Unix seconds (double precision);
-- header is the clear header (jsonb); frame is the signed frame as received (the personal part
-- stays sealed at rest, the signature can be checked again). cursor is assigned under a
-- transaction-level advisory lock, so it increases in commit order (see store/postgres.py).
CREATE TABLE events (
    cursor BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    site TEXT NOT NULL,
    counter TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    header JSONB NOT NULL,
    frame BYTEA NOT NULL
);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_counter ON events (site, counter, kind, cursor);
CREATE TABLE streams (
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    max_seq BIGINT NOT NULL,
    PRIMARY KEY (device_id, key_id)
);
CREATE TABLE gaps (
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    lo BIGINT NOT NULL,
    hi BIGINT NOT NULL,
    PRIMARY KEY (device_id, key_id, lo)
);
CREATE TABLE device_state (
    device_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    counter TEXT NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    state TEXT,
    info JSONB,
    state_at TEXT
);
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client TEXT NOT NULL,
    event_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX audit_at ON audit (at);
