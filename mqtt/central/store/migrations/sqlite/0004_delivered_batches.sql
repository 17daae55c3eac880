-- schema 4: a listener marks a whole batch delivered with one small row in delivered_batches
-- instead of rewriting every event row. An event is delivered when its own flag is set (events
-- redelivered after a crash, marked one by one) or its batch is in delivered_batches.
ALTER TABLE events ADD COLUMN batch INTEGER;
CREATE TABLE IF NOT EXISTS delivered_batches (
    batch INTEGER PRIMARY KEY,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS delivered_batches_at ON delivered_batches (at);
