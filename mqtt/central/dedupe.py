"""The central side's shared memory of events: duplicates, ``seq`` gaps and replays.

One SQLite file (WAL) that every listener of a group opens, since the broker spreads a
device's events and redeliveries across the group's members. One transaction per event:

* ``seen(event_id)``: an event id seen before is a duplicate (a redelivery, or a captured
  frame sent again); it is dropped.
* ``streams(device_id, key_id) -> max_seq``: identity and read_failed events number a stream
  per device key. A ``seq`` past ``max_seq + 1`` opens a gap (kept in ``gaps`` as ranges); a
  ``seq`` inside a gap fills it (a late or out-of-order delivery); any other ``seq`` at or below
  ``max_seq`` with a new event id is a *replay* and is rejected.
* ``seen`` rows older than the retention are pruned; ``seq`` still catches old replays.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from idstation.mqtt.errors import EventRejected

log = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seen_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS seen_age ON seen (seen_at);
CREATE TABLE IF NOT EXISTS streams (
    device_id TEXT NOT NULL, key_id TEXT NOT NULL, max_seq INTEGER NOT NULL, PRIMARY KEY (device_id, key_id)
);
CREATE TABLE IF NOT EXISTS gaps (
    device_id TEXT NOT NULL, key_id TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (device_id, key_id, lo)
);
"""

__all__ = ["DedupeStore", "Observation", "Verdict", "default_state_path", "is_volatile"]


class Verdict(enum.Enum):
    NEW = "new"  # next in sequence (or telemetry seen for the first time)
    GAP = "gap"  # accepted, but events before it are missing
    FILLED = "filled"  # accepted: a late event that fills a gap
    DUPLICATE = "duplicate"  # the event id was seen: dropped
    REPLAY = "replay"  # a new event id with an old seq: rejected


@dataclass(frozen=True, slots=True)
class Observation:
    verdict: Verdict
    missing: tuple[int, int] | None = None  # the gap opened (lo, hi), for GAP
    expected: int | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict in (Verdict.NEW, Verdict.GAP, Verdict.FILLED)


MAX_SEQ = 2**53  # the wire schema's bound (events.MAX_SEQ); SQLite integers are signed 64-bit
SYSTEM_STATE_DIR = Path("/var/lib/idstation-central")


def default_state_path(group: str) -> Path:
    """Where the state lives when no path is given: persistent, never the temporary directory.

    ``$IDSTATION_CENTRAL_STATE_DIR``, else ``/var/lib/idstation-central`` for root (systemd's
    ``StateDirectory=idstation-central`` makes it for a service user too), else
    ``$XDG_STATE_HOME/idstation-central`` (``~/.local/state/idstation-central``).
    """
    override = os.environ.get("IDSTATION_CENTRAL_STATE_DIR")
    if override:
        base = Path(override)
    elif os.geteuid() == 0 or os.access(SYSTEM_STATE_DIR, os.W_OK):
        base = SYSTEM_STATE_DIR
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = Path(xdg) / "idstation-central"
    return base / f"{group}.sqlite"


def is_volatile(path: Path) -> bool:
    """True when ``path`` lies on a file system that a reboot empties (tmp, /dev/shm, /run)."""
    resolved = path.resolve()
    roots = {Path(tempfile.gettempdir()).resolve(), Path("/tmp"), Path("/dev/shm"), Path("/run"), Path("/var/tmp")}  # noqa: S108
    return any(resolved.is_relative_to(root) for root in roots)


class DedupeStore:
    """Shared dedupe/sequence state. Safe across threads and processes (SQLite locking)."""

    def __init__(self, path: str | Path, *, retention_s: float = 30 * 86400.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if is_volatile(self.path):
            log.warning(
                "central_state_not_persistent",
                path=str(self.path),
                consequence="after a reboot or cleanup, already accepted events are accepted again",
            )
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._commit()
        self._last_prune = 0.0

    def _commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def observe(self, event_id: str, device_id: str, key_id: str, seq: int, data: bool) -> Observation:
        """Record one verified event and classify it (one transaction)."""
        if not (isinstance(seq, int) and 0 <= seq <= MAX_SEQ):
            raise EventRejected("bad_header", "seq out of range")  # never reaches SQLite's 64-bit integers
        now = time.time()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO seen (event_id, device_id, seen_at) VALUES (?, ?, ?)",
                    (event_id, device_id, now),
                )
                if cur.rowcount == 0:
                    self._db.execute("ROLLBACK")
                    return Observation(Verdict.DUPLICATE)
                obs = self._sequence(device_id, key_id, seq) if data else Observation(Verdict.NEW)
                if obs.verdict is Verdict.REPLAY:
                    self._db.execute("ROLLBACK")
                    return obs
                self._db.execute("COMMIT")
            except BaseException:  # whatever went wrong, the transaction never stays open
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        if now - self._last_prune > 60.0:
            self.prune(now)
        return obs

    def _sequence(self, device_id: str, key_id: str, seq: int) -> Observation:
        row = self._db.execute(
            "SELECT max_seq FROM streams WHERE device_id = ? AND key_id = ?", (device_id, key_id)
        ).fetchone()
        if row is None:
            # First event of this stream. Streams start at 1: the lanes may deliver a live event
            # before an older backlog, so everything below it is an open gap, not a replay.
            self._db.execute("INSERT INTO streams (device_id, key_id, max_seq) VALUES (?, ?, 0)", (device_id, key_id))
            max_seq = 0
        else:
            max_seq = row[0]
        if seq == max_seq + 1:
            self._set_max(device_id, key_id, seq)
            return Observation(Verdict.NEW)
        if seq > max_seq + 1:
            self._set_max(device_id, key_id, seq)
            self._db.execute(
                "INSERT INTO gaps (device_id, key_id, lo, hi) VALUES (?, ?, ?, ?)",
                (device_id, key_id, max_seq + 1, seq - 1),
            )
            return Observation(Verdict.GAP, (max_seq + 1, seq - 1), max_seq + 1)
        gap = self._db.execute(
            "SELECT lo, hi FROM gaps WHERE device_id = ? AND key_id = ? AND lo <= ? AND hi >= ?",
            (device_id, key_id, seq, seq),
        ).fetchone()
        if gap is None:
            return Observation(Verdict.REPLAY, expected=max_seq + 1)
        lo, hi = gap
        self._db.execute("DELETE FROM gaps WHERE device_id = ? AND key_id = ? AND lo = ?", (device_id, key_id, lo))
        for new_lo, new_hi in ((lo, seq - 1), (seq + 1, hi)):
            if new_lo <= new_hi:
                self._db.execute(
                    "INSERT INTO gaps (device_id, key_id, lo, hi) VALUES (?, ?, ?, ?)",
                    (device_id, key_id, new_lo, new_hi),
                )
        return Observation(Verdict.FILLED)

    def _set_max(self, device_id: str, key_id: str, seq: int) -> None:
        self._db.execute("UPDATE streams SET max_seq = ? WHERE device_id = ? AND key_id = ?", (seq, device_id, key_id))

    def gaps(self, device_id: str | None = None) -> list[tuple[str, int, int]]:
        """Open gaps ``(device_id, lo, hi)``: events the centre has not seen (yet)."""
        sql = "SELECT device_id, lo, hi FROM gaps"
        args: tuple[str, ...] = ()
        if device_id is not None:
            sql, args = sql + " WHERE device_id = ?", (device_id,)
        with self._lock:
            return [(r[0], r[1], r[2]) for r in self._db.execute(sql + " ORDER BY device_id, lo", args)]

    def max_seq(self, device_id: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT MAX(max_seq) FROM streams WHERE device_id = ?", (device_id,)).fetchone()
        return row[0] if row else None

    def prune(self, now: float | None = None) -> None:
        now = now or time.time()
        self._last_prune = now
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE seen_at < ?", (now - self.retention_s,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
