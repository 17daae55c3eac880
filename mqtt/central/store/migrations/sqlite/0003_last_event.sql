-- schema 3: when the device's latest data event (identity, read_failed) arrived (the fleet page).
ALTER TABLE device_state ADD COLUMN last_event_at REAL;
