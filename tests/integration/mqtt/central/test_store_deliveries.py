"""Delivery marks (both backends): a batch delivered whole is marked with one row; any event the
listener delivered — whole batch, part of one, or another listener's — is then a plain duplicate."""

from __future__ import annotations

from idstation.mqtt.central.store import Store, Verdict, open_store

from .conftest import incoming


def _redeliver(store: Store, *events) -> list[bool]:
    return [o.redeliver for o in store.record(list(events))]


def test_a_batch_delivered_whole_stays_delivered_for_every_listener(store: Store, store_url: str) -> None:
    batch = [incoming(seq) for seq in range(1, 6)]
    outcomes = store.record(batch)
    store.mark_delivered([o.cursor for o in outcomes])
    other = open_store(store_url)  # another listener, or this one restarted
    try:
        assert _redeliver(other, *batch) == [False] * 5
    finally:
        other.close()


def test_part_of_a_batch_delivered_leaves_the_rest_to_deliver_again(store: Store) -> None:
    batch = [incoming(seq) for seq in range(1, 4)]
    outcomes = store.record(batch)
    store.mark_delivered([outcomes[0].cursor, outcomes[2].cursor])
    assert _redeliver(store, *batch) == [False, True, False]


def test_an_event_redelivered_by_another_listener_is_marked_there(store: Store, store_url: str) -> None:
    event, later = incoming(1), incoming(2)
    store.record([event, later])  # this listener dies before delivering
    other = open_store(store_url)
    try:
        [again] = other.record([event])
        assert (again.verdict, again.redeliver) == (Verdict.DUPLICATE, True)
        other.mark_delivered([again.cursor])
        assert _redeliver(other, event, later) == [False, True]
    finally:
        other.close()


def test_a_batch_marked_twice_or_with_unknown_cursors_is_harmless(store: Store) -> None:
    outcomes = store.record([incoming(1), incoming(2)])
    cursors = [o.cursor for o in outcomes]
    store.mark_delivered(cursors)
    store.mark_delivered(cursors)  # the batch row exists already: rows are flagged, nothing fails
    store.mark_delivered([10_000_000])
    assert _redeliver(store, incoming(1, event_id=store.events_after(0)[0].event_id)) == [False]
