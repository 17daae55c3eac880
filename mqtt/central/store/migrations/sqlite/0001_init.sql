-- idstation central store, SQLite: schema 1. Times are Unix seconds (REAL); header is JSON text;
-- frame is the signed frame as received (the personal part stays sealed at rest).
-- A de-duplication file from before the store (tables seen/streams/gaps) upgrades in place.
CREATE TABLE IF NOT EXISTS events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    site TEXT NOT NULL,
    counter TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    received_at REAL NOT NULL,
    header TEXT NOT NULL,
    frame BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
CREATE INDEX IF NOT EXISTS events_counter ON events (site, counter, kind, cursor);
CREATE TABLE IF NOT EXISTS streams (
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    max_seq INTEGER NOT NULL,
    PRIMARY KEY (device_id, key_id)
);
CREATE TABLE IF NOT EXISTS gaps (
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    PRIMARY KEY (device_id, key_id, lo)
);
CREATE TABLE IF NOT EXISTS device_state (
    device_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    counter TEXT NOT NULL,
    last_seen REAL NOT NULL,
    state TEXT,
    info TEXT,
    state_at TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client TEXT NOT NULL,
    event_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
DROP TABLE IF EXISTS seen;
