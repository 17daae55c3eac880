"""The outbox: durable with its seq, lanes in order, a byte cap with policies, corruption set aside."""

from __future__ import annotations

from pathlib import Path

import pytest
from idstation.mqtt.errors import OutboxFull, PublishError, SealError
from idstation.mqtt.outbox import Lane, Outbox

from .conftest import CITIZEN, PRIVATE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _add(box: Outbox, builder, kind: str = "identity", **clear):
    private = PRIVATE if kind == "identity" else None
    return box.append(
        kind, f"idstation/v1/hn-01/c01/{kind}", lambda seq: builder.build(kind, seq, private=private, **clear)
    )


def test_seq_is_persisted_and_never_goes_back(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite")
    seqs = [_add(box, builder).seq for _ in range(3)]
    box.close()
    box = Outbox(tmp_path / "ob.sqlite")
    assert seqs == [1, 2, 3]
    assert _add(box, builder).seq == 4
    assert _add(box, builder, "heartbeat", info={}).seq == 4  # telemetry carries the last number


def test_rows_survive_a_reopen_until_acknowledged(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite")
    ids = [_add(box, builder).event_id for _ in range(3)]
    box.close()
    box = Outbox(tmp_path / "ob.sqlite")
    rows = box.pending(Lane.LIVE, 10)
    assert [r.event_id for r in rows] == ids
    box.ack(rows[0].id)
    box.flush_acks()
    assert [r.event_id for r in box.pending(Lane.LIVE, 10)] == ids[1:]


def test_old_data_becomes_backlog_and_live_comes_first(world, tmp_path: Path) -> None:
    clock, builder = FakeClock(), world.device()
    box = Outbox(tmp_path / "ob.sqlite", live_window_s=30, clock=clock)
    old = [_add(box, builder).event_id for _ in range(3)]
    _add(box, builder, "heartbeat", info={})
    clock.now += 600
    fresh = _add(box, builder).event_id
    assert [r.event_id for r in box.pending(Lane.LIVE, 10)] == [fresh]
    assert [r.event_id for r in box.pending(Lane.BACKLOG, 10)] == old
    assert [r.kind for r in box.pending(Lane.TELEMETRY, 10)] == ["heartbeat"]
    assert box.depth()["backlog"] == 3


def test_in_flight_rows_are_skipped(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite")
    for _ in range(3):
        _add(box, builder)
    first = box.pending(Lane.LIVE, 1)[0]
    assert box.pending(Lane.LIVE, 1, exclude={first.id})[0].id != first.id


def test_a_full_outbox_refuses_identity_loudly(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite", max_bytes=3000)
    stored = 0
    with pytest.raises(OutboxFull):
        for _ in range(100):
            _add(box, builder)
            stored += 1
    assert box.full_alarm
    assert len(box.pending(Lane.LIVE, 1000)) == stored  # nothing already stored was dropped


def test_a_full_outbox_drops_the_oldest_telemetry(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite", max_bytes=4000)
    first = _add(box, builder, "heartbeat", info={"n": 0}).event_id
    for n in range(1, 30):
        _add(box, builder, "heartbeat", info={"n": n})
    kept = [r.event_id for r in box.pending(Lane.TELEMETRY, 1000)]
    assert first not in kept and kept
    assert box.dropped_telemetry > 0
    assert box.depth()["bytes"] <= 4000


def test_a_new_status_supersedes_an_unsent_one(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite")
    box.append("status", "t", lambda s: builder.build("status", s, state="online"), retain=True)
    last = box.append("status", "t", lambda s: builder.build("status", s, state="alarm"), retain=True)
    rows = box.pending(Lane.TELEMETRY, 10)
    assert [r.event_id for r in rows] == [last.event_id] and rows[0].retain


def test_a_corrupt_file_is_set_aside_and_seq_still_moves_forward(world, tmp_path: Path) -> None:
    builder = world.device()
    path = tmp_path / "ob.sqlite"
    box = Outbox(path)
    last = [_add(box, builder).seq for _ in range(5)][-1]
    box.close()
    path.write_bytes(b"this is not a database" * 100)
    box = Outbox(path)
    assert box.set_aside is not None and box.set_aside.exists()
    assert _add(box, builder).seq > last
    assert box.pending(Lane.LIVE, 10)  # the new outbox works


def test_the_file_holds_only_ciphertext(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite")
    for _ in range(5):
        _add(box, builder)
    box.close()
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for value in CITIZEN.values():
        assert value.encode() not in blobs


# --- failed writes ----------------------------------------------------------------------------


def test_a_failed_write_is_a_typed_error_and_the_next_event_is_stored(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite")
    box._db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    with pytest.raises(PublishError, match="outbox write failed"):
        _add(box, builder)
    assert box.depth()["total"] == 0
    box._db.execute("DROP TRIGGER refuse")
    row = _add(box, builder)
    assert row.seq == 1  # the refused event never existed: its number is the next one's, no gap
    assert [r.event_id for r in box.pending(Lane.LIVE, 10)] == [row.event_id]


def test_a_failed_build_does_not_use_a_number(world, tmp_path: Path) -> None:
    builder = world.device()
    box = Outbox(tmp_path / "ob.sqlite")

    def broken(seq: int):
        raise SealError("the personal part is not JSON-serialisable: TypeError")

    with pytest.raises(SealError):
        box.append("identity", "idstation/v1/hn-01/c01/identity", broken)
    assert _add(box, builder).seq == 1
