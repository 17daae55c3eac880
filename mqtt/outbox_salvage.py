"""Salvage of a corrupt outbox: every row SQLite can still read is carried into the new file.

Theory of operation
-------------------
A corrupt outbox is renamed aside (``<path>.corrupt-<UTC>``) and a new one started; the events
in it are stored, signed frames, so any that can still be read are as good as new. Reading
goes in three passes, each bounded, each stopping at the first error it meets:

1. a scan in ``id`` order (all rows before the first damaged page);
2. the lane index (a different b-tree) for the ids it still knows;
3. probes by ``id`` (the table's own b-tree, one lookup per id) from the lowest id seen to the
   largest, and past it until ``MISS_LIMIT`` ids in a row are absent (``MAX_PROBES`` at most).

A row is kept only if its frame splits (:func:`~idstation.mqtt.seal.decode_frame`) and the
header inside names the same event id and kind: a damaged frame would only be rejected by the
centre. The set-aside file is left in place (it holds only ciphertext) for an investigation.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import structlog
from idstation.mqtt.errors import SealError
from idstation.mqtt.seal import decode_frame

log = structlog.get_logger(__name__)

MISS_LIMIT = 2000  # consecutive absent ids after which the probing stops
MAX_PROBES = 500_000  # ids probed at most: a 256 MB outbox of the smallest events holds ~400,000 rows
_COLUMNS = "id, event_id, kind, data, seq, topic, retain, size, enqueued_at, frame"

__all__ = ["SalvageReport", "SalvagedRow", "salvage_rows"]


@dataclass(frozen=True, slots=True)
class SalvagedRow:
    id: int
    event_id: str
    kind: str
    data: int
    seq: int
    topic: str
    retain: int
    size: int
    enqueued_at: float
    frame: bytes

    def __repr__(self) -> str:
        return f"SalvagedRow(id={self.id}, event_id={self.event_id!r}, kind={self.kind!r})"


@dataclass(frozen=True, slots=True)
class SalvageReport:
    salvaged: int  # rows carried into the new outbox
    damaged: int  # rows read whose frame did not hold together
    complete: bool  # the first scan read the whole table without an error


def _intact(values: tuple[object, ...]) -> SalvagedRow | None:
    try:
        row = SalvagedRow(*values)  # type: ignore[arg-type]
        if not isinstance(row.frame, bytes) or not isinstance(row.event_id, str):
            return None
        header = decode_frame(row.frame).header
    except (SealError, TypeError, ValueError):
        return None
    if header.get("event_id") != row.event_id or header.get("kind") != row.kind:
        return None
    return row


def _scan(db: sqlite3.Connection, sql: str, args: tuple[object, ...], found: dict[int, tuple[object, ...]]) -> bool:
    """Collect rows of one query until it ends (True) or fails (False)."""
    try:
        for values in db.execute(sql, args):
            found.setdefault(int(values[0]), values)
    except (sqlite3.DatabaseError, ValueError, TypeError, OverflowError):
        return False
    return True


def _probe(db: sqlite3.Connection, found: dict[int, tuple[object, ...]], lo: int, hi: int) -> None:
    """Look up each id from ``lo`` through ``hi``, then on until ``MISS_LIMIT`` ids in a row are absent."""
    misses, row_id = 0, lo - 1
    while misses < MISS_LIMIT and row_id - lo < MAX_PROBES:
        row_id += 1
        if row_id in found:
            misses = 0
            continue
        try:
            values = db.execute(f"SELECT {_COLUMNS} FROM events WHERE id = ?", (row_id,)).fetchone()  # noqa: S608
        except (sqlite3.DatabaseError, ValueError, TypeError, OverflowError):
            values = None
        if values is None:
            misses = 0 if row_id < hi else misses + 1
            continue
        misses = 0
        found[row_id] = values


def _id_range(db: sqlite3.Connection, known: set[int]) -> tuple[int, int]:
    """The ids to probe: those the readable parts name, else what SQLite says (if it is plausible)."""
    lo, hi = (min(known), max(known)) if known else (1, 0)
    with contextlib.suppress(sqlite3.DatabaseError, ValueError, TypeError):
        low, high = db.execute("SELECT MIN(id), MAX(id) FROM events").fetchone()
        if isinstance(low, int) and isinstance(high, int) and 0 < low <= high and high - low <= MAX_PROBES:
            lo, hi = (min(lo, low), max(hi, high)) if known else (low, high)
    return max(lo, 1), hi


def salvage_rows(path: Path) -> tuple[list[SalvagedRow], SalvageReport]:
    """The intact rows of the set-aside outbox file at ``path``, in ``id`` order."""
    found: dict[int, tuple[object, ...]] = {}
    complete = False
    try:
        db = sqlite3.connect(path, timeout=1.0)  # the set-aside copy: nobody else uses it
    except sqlite3.Error:
        log.error("outbox_salvage_unreadable", file=path.name)
        return [], SalvageReport(0, 0, False)
    try:
        complete = _scan(db, f"SELECT {_COLUMNS} FROM events ORDER BY id", (), found)  # noqa: S608
        if not complete:
            ids: dict[int, tuple[object, ...]] = {}
            _scan(db, "SELECT id FROM events INDEXED BY events_lane", (), ids)
            _probe(db, found, *_id_range(db, set(found) | set(ids)))
    except (sqlite3.Error, ValueError) as exc:  # a damaged schema: keep what was read
        log.error("outbox_salvage_stopped", file=path.name, error=type(exc).__name__)
    finally:
        db.close()
    rows = [r for r in (_intact(found[k]) for k in sorted(found)) if r is not None]
    report = SalvageReport(len(rows), len(found) - len(rows), complete)
    log.warning("outbox_salvaged", file=path.name, salvaged=report.salvaged, damaged=report.damaged)
    return rows, report
