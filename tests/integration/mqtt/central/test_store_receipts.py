"""Store.record returns each data event's stream receipt state as the batch committed it (both backends)."""

from __future__ import annotations

from idstation.mqtt.central.store import Store, Verdict, open_store

from .conftest import incoming


def test_every_data_event_of_a_batch_carries_its_streams_state_after_the_commit(store: Store) -> None:
    batch = [incoming(1), incoming(4), incoming(1, device_id="box-2"), incoming(7), incoming(2, device_id="box-2")]
    outcomes = store.record(batch)
    assert [o.receipt for o in outcomes] == [(1, (4, 7)), (1, (4, 7)), (2, ()), (1, (4, 7)), (2, ())]
    assert store.receipt_state("box-1", "k1") == (1, [4, 7])
    assert store.receipt_state("box-2", "k1") == (2, [])


def test_a_gap_filled_in_the_same_batch_is_closed_in_the_receipt(store: Store) -> None:
    outcomes = store.record([incoming(1), incoming(3), incoming(2)])
    assert [o.verdict for o in outcomes] == [Verdict.NEW, Verdict.GAP, Verdict.FILLED]
    assert {o.receipt for o in outcomes} == {(3, ())}


def test_a_duplicate_and_a_replay_carry_the_held_state_telemetry_none(store: Store) -> None:
    first = incoming(1)
    store.record([first, incoming(3)])
    dup, replay, beat = store.record([first, incoming(3), incoming(0, kind="heartbeat")])
    assert (dup.verdict, dup.receipt) == (Verdict.DUPLICATE, (1, (3,)))
    assert (replay.verdict, replay.receipt) == (Verdict.REPLAY, (1, (3,)))
    assert beat.receipt is None


def test_a_second_writer_sees_the_first_ones_commits_in_its_receipts(store: Store, store_url: str) -> None:
    other = open_store(store_url)
    try:
        store.record([incoming(1), incoming(2)])
        [outcome] = other.record([incoming(5)])
        assert outcome.receipt == (2, (5,))
        [outcome] = store.record([incoming(3)])
        assert outcome.receipt == (3, (5,))
    finally:
        other.close()


def test_the_receipt_lists_at_most_512_numbers_above_upto(store: Store) -> None:
    batch = [incoming(1)] + [incoming(seq) for seq in range(3, 600)]
    outcomes = store.record(batch)
    upto, above = outcomes[-1].receipt or (0, ())
    assert (upto, len(above), above[0], above[-1]) == (1, 512, 3, 514)


def test_a_heartbeat_whose_floor_closes_gaps_carries_the_moved_state_others_none(store: Store) -> None:
    store.record([incoming(1), incoming(5)])
    quiet, closing = store.record(
        [incoming(0, kind="heartbeat", info={"seq_floor": 2}), incoming(0, kind="heartbeat", info={"seq_floor": 5})]
    )
    assert quiet.receipt is None  # nothing below 2 was open
    assert closing.receipt == (5, ())
