"""Several writers on one store: the gap/replay state stays exact and cursors follow commit order."""

from __future__ import annotations

import random
import threading

from idstation.mqtt.central.store import Store, open_store

from .conftest import incoming

DEVICES, PER_DEVICE, WRITERS = 6, 60, 3


def _write(url: str, events: list, errors: list[BaseException]) -> None:
    store = open_store(url)
    try:
        rng = random.Random(len(events))
        i = 0
        while i < len(events):  # bounded: each turn consumes at least one event
            n = rng.randint(1, 12)
            store.record(events[i : i + n])
            i += n
    except BaseException as exc:  # reported to the test thread
        errors.append(exc)
    finally:
        store.close()


def _read(url: str, stop: threading.Event, seen: list[int]) -> None:
    """A consumer that keeps a cursor, like ``central export --follow``."""
    store = open_store(url)
    try:
        cursor = 0
        for _ in range(100_000):  # bounded
            last_round = stop.is_set()
            for event in store.events_after(cursor, 50):
                seen.append(event.cursor)
                cursor = event.cursor
            if last_round:
                return
    finally:
        store.close()


def test_writers_with_events_in_any_order_leave_exact_streams_and_a_gapless_cursor_feed(
    store: Store, store_url: str
) -> None:
    url = store_url
    events = [incoming(seq, device_id=f"box-{d}") for d in range(DEVICES) for seq in range(1, PER_DEVICE + 1)]
    random.Random(7).shuffle(events)
    shares = [events[i::WRITERS] for i in range(WRITERS)]
    duplicates = events[:40]  # redeliveries to another writer
    shares[0] = shares[0] + duplicates
    errors: list[BaseException] = []
    seen: list[int] = []
    stop = threading.Event()
    reader = threading.Thread(target=_read, args=(url, stop, seen))
    reader.start()
    writers = [threading.Thread(target=_write, args=(url, share, errors)) for share in shares]
    for t in writers:
        t.start()
    for t in writers:
        t.join(120)
    stop.set()
    reader.join(120)
    assert not errors
    assert store.gaps() == []
    for d in range(DEVICES):
        assert store.max_seq(f"box-{d}") == PER_DEVICE
        assert store.receipt_state(f"box-{d}", "k1") == (PER_DEVICE, [])
    stored = store.events_after(0, 10_000)
    assert len(stored) == DEVICES * PER_DEVICE
    assert sorted(seen) == seen == [e.cursor for e in stored]  # each once, in order, none skipped
