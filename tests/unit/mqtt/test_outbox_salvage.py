"""A really corrupted outbox: set aside, and every row SQLite can still read carried into the new one."""

from __future__ import annotations

import os
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.outbox import Lane, Outbox

from .conftest import PRIVATE

PAGE = 4096


def _fill(path: Path, builder, count: int) -> list[str]:
    box = Outbox(path)
    topic = "idstation/v1/hn-01/c01/identity"
    build = lambda n: builder.build("identity", n, private=PRIVATE)  # noqa: E731
    rows = [box.append("identity", topic, build) for _ in range(count)]
    box.close()  # checkpoints the WAL into the file
    return [row.event_id for row in rows]


def _damage_pages(path: Path, pages: list[int]) -> None:
    rng = random.Random(7)
    with open(path, "r+b") as f:
        for page in pages:
            f.seek(page * PAGE)
            f.write(bytes(rng.randrange(256) for _ in range(PAGE)))
        f.flush()
        os.fsync(f.fileno())


def test_intact_rows_of_a_damaged_outbox_are_salvaged_and_damaged_ones_counted(world, tmp_path: Path) -> None:
    builder = world.device()
    path = tmp_path / "ob.sqlite"
    ids = _fill(path, builder, 80)
    pages = path.stat().st_size // PAGE
    _damage_pages(path, [pages // 3, pages // 2])
    box = Outbox(path)
    assert box.set_aside is not None and box.set_aside.exists()
    report = box.salvage
    assert report is not None and not report.complete
    rows = box.pending(Lane.BACKLOG, 1000) + box.pending(Lane.LIVE, 1000)
    salvaged = [r.event_id for r in rows]
    assert report.salvaged == len(salvaged)
    assert 40 <= len(salvaged) < 80  # two damaged pages cost a few rows, not the file
    assert set(salvaged) <= set(ids)
    assert len(set(salvaged)) == len(salvaged)
    assert box.last_seq >= 80  # the numbers never go back


def test_rows_of_a_long_lived_outbox_with_high_ids_are_salvaged(world, tmp_path: Path) -> None:
    builder = world.device()
    path = tmp_path / "ob.sqlite"
    box = Outbox(path)
    beat = builder.build("heartbeat", 0, info={})
    box._db.execute(  # a box that has run for years: its row ids are in the millions
        "INSERT INTO events (id, event_id, kind, data, seq, topic, retain, size, enqueued_at, frame)"
        " VALUES (5000000, ?, 'heartbeat', 0, 0, 't/heartbeat', 0, ?, 0, ?)",
        (beat.event_id, len(beat.frame), beat.frame),
    )
    box.close()
    ids = _fill(path, builder, 80)
    pages = path.stat().st_size // PAGE
    _damage_pages(path, [pages // 2])
    box = Outbox(path)
    assert box.salvage is not None and not box.salvage.complete
    salvaged = {r.event_id for lane in (Lane.LIVE, Lane.BACKLOG) for r in box.pending(lane, 1000)}
    assert 50 <= len(salvaged) < 80 and salvaged <= set(ids)


def test_a_file_that_is_not_a_database_salvages_nothing_and_starts_afresh(world, tmp_path: Path) -> None:
    builder = world.device()
    path = tmp_path / "ob.sqlite"
    _fill(path, builder, 5)
    path.write_bytes(b"this is not a database" * 100)
    box = Outbox(path)
    assert box.set_aside is not None
    assert box.salvage is not None and box.salvage.salvaged == 0
    assert box.last_seq >= 5


@settings(
    max_examples=max(5, int(os.environ.get("IDSTATION_FUZZ_EXAMPLES", "150")) // 6),
    deadline=None,
    derandomize=True,  # the same damage on every run: reproducible, never flaky
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(0, 200_000), st.binary(min_size=1, max_size=64)), min_size=1, max_size=8))
def test_any_damage_opens_an_outbox_that_works_and_never_goes_back(world, tmp_path_factory, damage) -> None:
    builder = world.device(f"box-{len(damage)}")
    path = tmp_path_factory.mktemp("damaged") / "ob.sqlite"
    ids = _fill(path, builder, 30)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        for offset, garbage in damage:
            f.seek(offset % size)
            f.write(garbage)
    box = Outbox(path)
    kept = [r.event_id for lane in (Lane.LIVE, Lane.BACKLOG) for r in box.pending(lane, 100)]
    assert len(set(kept)) == len(kept)
    if box.set_aside is not None:  # salvaged rows are checked; damage quick_check misses is read as is
        assert set(kept) <= set(ids)
    assert box.last_seq >= 30
    topic = "idstation/v1/hn-01/c01/identity"
    assert box.append("identity", topic, lambda n: builder.build("identity", n, private=PRIVATE)).seq > 30
    box.close()
