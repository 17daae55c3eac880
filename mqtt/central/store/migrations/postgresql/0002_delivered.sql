-- schema 2: whether the listener's own delivery (stdout / on_event) of an event happened. A
-- message delivered again by the broker whose event is held but was never delivered (the
-- listener died between its commit and its delivery) is delivered once more: at least once.
ALTER TABLE events ADD COLUMN delivered BOOLEAN NOT NULL DEFAULT FALSE;
