"""The central store: the same behaviour on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from idstation.mqtt.central.store import Store, Verdict, open_store

from .conftest import incoming


def verdicts(store: Store, *events) -> list[str]:
    return [o.verdict.value for o in store.record(list(events))]


def test_migrate_is_versioned_and_idempotent(store: Store) -> None:
    assert store.schema_version() == 4
    assert store.migrate() == 4
    assert store.schema_version() == 4


def test_an_accepted_event_is_stored_as_received(store: Store) -> None:
    event = incoming(1)
    [outcome] = store.record([event])
    assert outcome.verdict is Verdict.NEW and outcome.cursor is not None
    [stored] = store.events_after(0)
    assert (stored.cursor, stored.event_id, stored.seq) == (outcome.cursor, event.event_id, 1)
    assert stored.frame == event.frame
    assert stored.header == event.header


def test_an_event_id_held_already_is_a_duplicate_in_the_same_and_a_later_batch(store: Store) -> None:
    event = incoming(1)
    assert verdicts(store, event, event) == ["new", "duplicate"]
    assert verdicts(store, event) == ["duplicate"]
    assert len(store.events_after(0)) == 1


def test_a_skipped_seq_opens_a_gap_that_a_late_event_fills(store: Store) -> None:
    assert verdicts(store, incoming(1), incoming(4)) == ["new", "gap"]
    assert store.gaps("box-1") == [("box-1", 2, 3)]
    assert store.receipt_state("box-1", "k1") == (1, [4])
    assert verdicts(store, incoming(3)) == ["filled"]
    assert store.receipt_state("box-1", "k1") == (1, [3, 4])
    assert verdicts(store, incoming(2)) == ["filled"]
    assert store.gaps() == []
    assert store.receipt_state("box-1", "k1") == (4, [])


def test_a_new_event_id_with_a_used_seq_is_a_replay_and_not_stored(store: Store) -> None:
    store.record([incoming(1), incoming(2)])
    [outcome] = store.record([incoming(2)])
    assert outcome.verdict is Verdict.REPLAY and outcome.cursor is None
    assert [e.seq for e in store.events_after(0)] == [1, 2]


def test_streams_are_per_device_key(store: Store) -> None:
    assert verdicts(store, incoming(1, key_id="old"), incoming(1, key_id="new")) == ["new", "new"]
    assert store.max_seq("box-1") == 1


def test_telemetry_is_stored_but_never_moves_the_stream(store: Store) -> None:
    store.record([incoming(5, kind="status", state="online", info={"outbox": 3})])
    assert store.max_seq("box-1") is None
    assert verdicts(store, incoming(1)) == ["new"]
    [row] = store.device_states()
    assert (row["device_id"], row["state"], row["info"]) == ("box-1", "online", {"outbox": 3})


def test_a_later_heartbeat_keeps_the_state_and_updates_the_info(store: Store) -> None:
    store.record([incoming(0, kind="status", state="alarm", info={"a": 1})])
    store.record([incoming(0, kind="heartbeat", info={"uptime": 9})])
    [row] = store.device_states()
    assert (row["state"], row["info"]) == ("alarm", {"uptime": 9})


def test_events_after_a_cursor_resume_in_commit_order_with_filters(store: Store) -> None:
    store.record([incoming(1), incoming(2, kind="read_failed", reason="timeout"), incoming(0, kind="heartbeat")])
    everything = store.events_after(0)
    cursors = [e.cursor for e in everything]
    assert cursors == sorted(cursors) and len(set(cursors)) == 3
    assert [e.kind for e in store.events_after(everything[0].cursor)] == ["read_failed", "heartbeat"]
    assert [e.kind for e in store.events_after(0, kinds=["heartbeat"])] == ["heartbeat"]
    assert store.events_after(0, site="elsewhere") == []
    assert len(store.events_after(0, limit=2)) == 2


def test_latest_event_of_a_counter(store: Store) -> None:
    store.record([incoming(1), incoming(2), incoming(0, kind="heartbeat")])
    latest = store.latest_event("hn-01", "c01", ["identity"])
    assert latest is not None and latest.seq == 2
    assert store.latest_event("hn-01", "c01", ["identity"], since=time.time() + 60) is None


def test_failure_and_hourly_counts(store: Store) -> None:
    store.record([incoming(1, kind="read_failed", reason="timeout"), incoming(2, kind="read_failed", reason="timeout")])
    store.record([incoming(3, kind="read_failed", reason="card_removed"), incoming(4)])
    assert store.failure_counts(0) == {"box-1": {"timeout": 2, "card_removed": 1}}
    hours = store.hourly_counts(0)
    assert {(h["device_id"], h["kind"], h["count"]) for h in hours} == {
        ("box-1", "read_failed", 3),
        ("box-1", "identity", 1),
    }
    assert all(h["hour"].endswith(":00:00Z") for h in hours)


def test_audit_rows_come_back_in_order(store: Store) -> None:
    store.add_audit("clerk-1", "e1", "/events/e1", 100.0)
    store.add_audit("clerk-2", "e2", "/events/e2", 200.0)
    assert [a["client"] for a in store.audit_since(150.0)] == ["clerk-2"]
    assert len(store.audit_since(0)) == 2


def test_purge_removes_old_events_and_keeps_the_stream_state(store: Store) -> None:
    old, new = time.time() - 40 * 86400, time.time()
    store.record([incoming(1, received_at=old), incoming(2, received_at=old), incoming(3, received_at=new)])
    assert store.purge(time.time() - 30 * 86400) == 2
    assert [e.seq for e in store.events_after(0)] == [3]
    assert store.max_seq("box-1") == 3
    assert verdicts(store, incoming(1)) == ["replay"]  # a purged event's seq is still used


def test_a_bad_url_is_a_typed_error() -> None:
    from idstation.mqtt.errors import StoreError

    for url in ("mysql://x", "sqlite://relative/path", ""):
        with pytest.raises(StoreError):
            open_store(url)


def test_a_duplicate_of_an_event_never_delivered_is_to_be_delivered_again(store: Store) -> None:
    first, other = incoming(1), incoming(2)
    [held, delivered] = store.record([first, other])
    store.mark_delivered([delivered.cursor])
    again = store.record([first, other, first])
    assert [(o.verdict, o.redeliver) for o in again] == [
        (Verdict.DUPLICATE, True),  # committed, never delivered (the listener died): deliver it now
        (Verdict.DUPLICATE, False),
        (Verdict.DUPLICATE, False),  # a second copy in the same batch: once is enough
    ]
    assert again[0].cursor == held.cursor


def test_a_frame_other_than_the_held_one_is_never_delivered_again(store: Store) -> None:
    event = incoming(1)
    store.record([event])
    forged = type(event)(**{**{f: getattr(event, f) for f in event.__dataclass_fields__}, "frame": b"other"})
    [outcome] = store.record([forged])
    assert (outcome.verdict, outcome.redeliver) == (Verdict.DUPLICATE, False)


def test_head_is_the_last_committed_cursor(store: Store) -> None:
    assert store.head() == 0
    outcomes = store.record([incoming(1), incoming(2)])
    assert store.head() == outcomes[-1].cursor
    assert store.events_after(store.head()) == []


def test_device_state_says_when_the_last_data_event_arrived(store: Store) -> None:
    store.record([incoming(0, kind="heartbeat", received_at=500.0)])
    assert store.device_states()[0]["last_event_at"] is None
    store.record([incoming(1, received_at=1000.0), incoming(0, kind="heartbeat", received_at=2000.0)])
    [row] = store.device_states()
    assert (row["last_event_at"], row["last_seen"]) == (1000.0, 2000.0)


def test_a_box_floor_closes_the_gaps_it_will_never_fill(store: Store) -> None:
    store.record([incoming(1), incoming(5), incoming(9)])  # gaps 2-4 and 6-8
    assert store.receipt_state("box-1", "k1") == (1, [5, 9])
    store.record([incoming(0, kind="heartbeat", info={"seq_floor": 7})])  # nothing below 7 will come
    assert store.gaps("box-1") == [("box-1", 7, 8)]
    assert store.receipt_state("box-1", "k1") == (6, [9])
    assert verdicts(store, incoming(8), incoming(7)) == ["filled", "filled"]
    assert store.receipt_state("box-1", "k1") == (9, [])


def test_receipt_states_of_many_streams_in_one_call(store: Store) -> None:
    store.record([incoming(1), incoming(3), incoming(1, device_id="box-2")])
    states = store.receipt_states([("box-1", "k1"), ("box-2", "k1"), ("box-9", "k1")])
    assert states == {("box-1", "k1"): (1, [3]), ("box-2", "k1"): (1, []), ("box-9", "k1"): (0, [])}
    assert states[("box-1", "k1")] == store.receipt_state("box-1", "k1")
