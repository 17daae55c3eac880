"""The outbox's receipt states: a data row reaches the broker, waits for the centre's receipt,
and is sent again (backlog lane) when none came, with exponential backoff.

Theory of operation
-------------------
States of a data row: *new* (``at_broker`` NULL: LIVE or BACKLOG lane) -> PUBACK -> *at the
broker* (``at_broker`` set, ``attempts`` + 1, ``next_try`` = now + the backoff) -> either a
receipt covers its ``seq`` (deleted) or ``next_try`` passes (due: the BACKLOG lane sends it
again, the same bytes) -> PUBACK -> *at the broker* with a longer wait, and so on.

The wait after the n-th PUBACK (n from 1) is ``min(max_s, timeout_s * 2**(n-1))`` times a
random factor in [0.8, 1.2] (boxes of a fleet do not resend in step). A centre down for days
thus costs each waiting event one resend per ``max_s`` at most: a bounded trickle, on top of
the backlog lane's byte rate and in-flight window.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ResendPolicy", "delete_receipted", "mark_at_broker"]

# the wait after this PUBACK: timeout * 2**(attempts so far), capped, times the jitter
_MARK = "at_broker = ?, attempts = attempts + 1, next_try = ? + MIN(?, ? * (1 << MIN(attempts, 30))) * ?"


@dataclass(frozen=True, slots=True)
class ResendPolicy:
    timeout_s: float = 30.0  # no receipt this long after the first PUBACK: send again
    max_s: float = 3600.0  # the longest wait between two sends of one event
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.max_s >= self.timeout_s):
            raise TypeError("0 < timeout_s <= max_s")


def _chunks(items: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mark_at_broker(db: sqlite3.Connection, ids: list[int], now: float, policy: ResendPolicy) -> None:
    """Rows ``ids`` were acknowledged by the broker (inside the caller's transaction)."""
    jitter = policy.rng.uniform(0.8, 1.2)
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        sql = f"UPDATE events SET {_MARK} WHERE data = 1 AND id IN ({marks})"  # noqa: S608 - placeholders only
        db.execute(sql, (now, now, policy.max_s, policy.timeout_s, jitter, *chunk))


def delete_receipted(db: sqlite3.Connection, upto: int, above: list[int]) -> list[tuple[int, int]]:
    """Delete the data rows a receipt covers (inside the caller's transaction): ``(id, size)`` of each."""
    covered = "DELETE FROM events INDEXED BY events_data_seq WHERE data = 1 AND seq <= ? RETURNING id, size"
    gone = db.execute(covered, (upto,)).fetchall()
    for chunk in _chunks(above):
        marks = ",".join("?" * len(chunk))
        sql = f"DELETE FROM events INDEXED BY events_data_seq WHERE data = 1 AND seq IN ({marks}) RETURNING id, size"  # noqa: S608
        gone += db.execute(sql, chunk).fetchall()
    return [(int(row_id), int(size)) for row_id, size in gone]
