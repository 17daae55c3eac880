"""The outbox's lanes: the row type and the indexed queries that read each lane (:mod:`.outbox`).

Every query is served by a partial index of :mod:`.outbox_file`: never a scan through the frames.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Lane", "OutboxRow", "count_lanes", "fetch_pending", "lane_queries", "rows_of"]

# the row sets of the lanes, each read through its partial index (see outbox_file)
_UNSENT = "INDEXED BY events_unsent WHERE data = 1 AND at_broker IS NULL"
_WAITING = "INDEXED BY events_waiting WHERE at_broker IS NOT NULL"
_COUNT = "SELECT COUNT(*) FROM events"
_PENDING_SQL = (
    "SELECT id, event_id, kind, seq, topic, retain, size, enqueued_at, frame FROM events"
    " {where} ORDER BY enqueued_at, id LIMIT ?"
)


class Lane(enum.IntEnum):
    LIVE = 0
    BACKLOG = 1
    TELEMETRY = 2


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: str
    kind: str
    seq: int
    topic: str
    retain: bool
    size: int
    enqueued_at: float
    frame: bytes
    lane: Lane

    def __repr__(self) -> str:
        return f"OutboxRow(id={self.id}, event_id={self.event_id!r}, kind={self.kind!r}, lane={self.lane.name})"


def lane_queries(lane: Lane, now: float, cutoff: float) -> list[tuple[str, tuple[float, ...]]]:
    """The WHERE clauses (with their arguments) that select the unsent rows of ``lane``."""
    # each query is served by an index (outbox_file): never a scan through the frames
    queries: list[tuple[str, tuple[float, ...]]] = []
    if lane is Lane.LIVE:
        queries.append((f"{_UNSENT} AND enqueued_at >= ?", (cutoff,)))
    elif lane is Lane.BACKLOG:  # old ones never taken by the broker, and resends that are due
        queries.append((f"{_UNSENT} AND enqueued_at < ?", (cutoff,)))
        queries.append((f"{_WAITING} AND next_try <= ?", (now,)))
    else:
        queries.append(("INDEXED BY events_lane WHERE data = 0", ()))
    return queries


def fetch_pending(db: sqlite3.Connection, queries: Sequence[tuple[str, tuple[float, ...]]], limit: int) -> list[Any]:
    """The raw rows of ``queries``, up to ``limit`` each (caller holds the outbox lock)."""
    return [r for where, args in queries for r in db.execute(_PENDING_SQL.format(where=where), (*args, limit))]


def rows_of(rows: list[Any], lane: Lane, skip: Iterable[int]) -> list[OutboxRow]:
    """The raw rows as :class:`OutboxRow` in enqueue order, without the ids in ``skip``."""
    skip = set(skip)
    rows.sort(key=lambda r: (r[7], r[0]))  # enqueue order across both backlog queries
    return [
        OutboxRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8], lane) for r in rows if r[0] not in skip
    ]


def count_lanes(db: sqlite3.Connection, cutoff: float) -> tuple[int, int, int, int, float | None]:
    """Unsent rows in the live, backlog and telemetry lanes, rows waiting for a receipt and the
    enqueue time of the oldest of those: four index-only counts, no frame is read."""
    one = db.execute
    live = one(f"{_COUNT} {_UNSENT} AND enqueued_at >= ?", (cutoff,)).fetchone()[0]
    backlog = one(f"{_COUNT} {_UNSENT} AND enqueued_at < ?", (cutoff,)).fetchone()[0]
    telemetry = one(f"{_COUNT} INDEXED BY events_lane WHERE data = 0").fetchone()[0]
    waiting, oldest = one(f"SELECT COUNT(*), MIN(enqueued_at) FROM events {_WAITING}").fetchone()  # noqa: S608
    return live, backlog, telemetry, waiting, oldest
