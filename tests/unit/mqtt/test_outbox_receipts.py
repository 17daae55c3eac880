"""Receipt states in the outbox: at the broker a data row is kept, a receipt deletes what it covers,
a row without a receipt comes back through the backlog lane with a growing wait."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from idstation.mqtt.outbox import Lane, Outbox, ResendPolicy

from .conftest import PRIVATE


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _box(path: Path, clock: Clock) -> Outbox:
    policy = ResendPolicy(timeout_s=30.0, max_s=300.0, rng=random.Random(1))
    return Outbox(path, clock=clock, resend=policy)


def _add(box: Outbox, builder, kind: str = "identity"):
    if kind == "identity":
        return box.append(kind, "t/identity", lambda s: builder.build(kind, s, private=PRIVATE))
    return box.append(kind, "t/heartbeat", lambda s: builder.build(kind, s, info={}))


def _due(box: Outbox) -> list[int]:
    return [r.seq for lane in (Lane.LIVE, Lane.BACKLOG) for r in box.pending(lane, 100)]


def test_a_data_row_at_the_broker_is_kept_until_a_receipt_covers_it(world, tmp_path) -> None:
    builder, clock = world.device(), Clock()
    box = _box(tmp_path / "ob.sqlite", clock)
    rows = [_add(box, builder) for _ in range(5)]
    for row in rows:
        box.mark_at_broker(row.id)
    box.flush_acks()
    assert _due(box) == []
    assert box.depth()["awaiting_receipt"] == 5 and box.depth()["total"] == 5
    assert box.receipted(2, [4]) == 3
    assert box.depth()["awaiting_receipt"] == 2
    clock.now += 1000
    assert _due(box) == [3, 5]


def test_telemetry_still_leaves_at_the_broker_acknowledgement(world, tmp_path) -> None:
    builder, clock = world.device(), Clock()
    box = _box(tmp_path / "ob.sqlite", clock)
    beat = _add(box, builder, "heartbeat")
    box.ack(beat.id)
    box.flush_acks()
    assert box.depth()["total"] == 0


def test_without_a_receipt_the_wait_before_each_resend_doubles_up_to_the_cap(world, tmp_path) -> None:
    builder, clock = world.device(), Clock()
    box = _box(tmp_path / "ob.sqlite", clock)
    row = _add(box, builder)
    waits = []
    for _ in range(6):
        start = clock.now
        box.mark_at_broker(row.id)
        box.flush_acks()
        while not _due(box):
            clock.now += 1.0
        assert box.pending(Lane.BACKLOG, 10)[0].event_id == row.event_id  # the resend lane
        waits.append(clock.now - start)
    assert 24 <= waits[0] <= 37  # timeout with jitter
    assert waits[1] > waits[0] * 1.3 and waits[2] > waits[1] * 1.3
    assert max(waits) <= 300 * 1.2 + 1  # capped: a bounded trickle


def test_a_restart_makes_waiting_rows_due_within_one_timeout(world, tmp_path) -> None:
    builder, clock = world.device(), Clock()
    box = _box(tmp_path / "ob.sqlite", clock)
    row = _add(box, builder)
    for _ in range(5):  # a long wait built up
        box.mark_at_broker(row.id)
        box.flush_acks()
    box.close()
    box = _box(tmp_path / "ob.sqlite", clock)
    clock.now += 31 * 1.2
    assert _due(box) == [row.seq]


def test_an_outbox_of_schema_1_is_migrated_with_its_rows(world, tmp_path) -> None:
    builder, clock = world.device(), Clock()
    path = tmp_path / "ob.sqlite"
    event = builder.build("identity", 1, private=PRIVATE)
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
        " data INTEGER NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL, retain INTEGER NOT NULL,"
        " size INTEGER NOT NULL, enqueued_at REAL NOT NULL, frame BLOB NOT NULL);"
        "INSERT INTO meta VALUES ('schema', 1), ('seq', 1);"
    )
    db.execute(
        "INSERT INTO events (event_id, kind, data, seq, topic, retain, size, enqueued_at, frame)"
        " VALUES (?, 'identity', 1, 1, 't/identity', 0, ?, ?, ?)",
        (event.event_id, len(event.frame), clock.now, event.frame),
    )
    db.commit()
    db.close()
    box = _box(path, clock)
    assert box.set_aside is None
    assert [r.event_id for r in box.pending(Lane.LIVE, 10)] == [event.event_id]
    assert _add(box, builder).seq == 2


def test_the_seq_floor_is_the_lowest_number_the_box_may_still_send(world, tmp_path) -> None:
    builder, clock = world.device(), Clock()
    box = _box(tmp_path / "ob.sqlite", clock)
    assert box.seq_floor() == 1
    rows = [_add(box, builder) for _ in range(4)]
    assert box.seq_floor() == 1
    box.receipted(2, [])
    assert box.seq_floor() == 3
    box.receipted(4, [])
    assert box.seq_floor() == 5 == rows[-1].seq + 1


def test_telemetry_carries_the_seq_floor_only_when_receipts_are_on(world, tmp_path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from idstation.mqtt.client import Publisher, PublisherConfig
    from idstation.mqtt.seal import decode_frame

    def beat_info(name: str, keys) -> dict:
        config = PublisherConfig(
            broker_url="mqtt://127.0.0.1:1", device_id="box-1", site="hn-01", counter="c01",
            signing_key=Ed25519PrivateKey.generate(), central_public_key=world.central.public_key(),
            outbox_path=tmp_path / f"{name}.sqlite", receipt_keys=keys,
        )  # fmt: skip
        pub = Publisher(config)  # never started: everything stays in the outbox
        pub.submit_read_failed("no_card")
        pub.heartbeat()
        row = pub.outbox.pending(Lane.TELEMETRY, 10)[-1]
        pub.outbox.close()
        return decode_frame(row.frame).header["info"]

    assert beat_info("on", [Ed25519PrivateKey.generate().public_key()])["seq_floor"] == 1
    assert "seq_floor" not in beat_info("off", None)
