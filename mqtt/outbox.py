"""The durable outbox: SQLite (WAL, ``synchronous=FULL``), the single source of truth for delivery.

Theory of operation
-------------------
* :meth:`Outbox.append` takes the next ``seq``, builds the signed (and sealed) frame with it and
  stores both in one transaction: when it returns, the event survives a power cut. The file
  only ever holds finished frames, so personal data is on disk only as HPKE ciphertext.
* A telemetry row is deleted when the broker acknowledged its QoS 1 PUBLISH (:meth:`ack`). With
  receipts on, a data row is only marked "at the broker" then (:meth:`mark_at_broker`) and
  deleted when the centre's signed receipt covers it (:meth:`receipted`); without a receipt it
  is sent again through the backlog lane, with backoff (:mod:`~idstation.mqtt.outbox_receipts`).
  Deletes and marks are batched (a lost one only causes a resend, which the centre recognises
  by ``event_id``).
  After a reconnect or a restart every remaining row is sent again with the same bytes.
* Lanes, in order: LIVE (identity/read_failed younger than ``live_window_s``), BACKLOG (older
  ones, drained at a configured rate by the client), TELEMETRY (status, heartbeat); each read
  through its own index (:mod:`~idstation.mqtt.outbox_lanes`).
* A byte cap: a data event that does not fit raises :class:`OutboxFull` (never dropped
  silently; the client raises an alarm status); telemetry evicts the oldest telemetry instead.
  A new status supersedes unsent older ones.
* ``seq`` is also reserved in blocks in a side file (``<path>.seq``), so even a corrupt outbox
  that is set aside and replaced never makes ``seq`` go back.
* At start the file is checked (``PRAGMA quick_check``); a corrupt file is renamed
  ``<path>.corrupt-<UTC time>``, reported, and a new one started, into which every row SQLite
  can still read from the set-aside file is carried (:mod:`~idstation.mqtt.outbox_salvage`).
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog
from idstation.hal.storage import write_atomic
from idstation.mqtt.errors import OutboxDiskFull, OutboxFull, PublishError
from idstation.mqtt.events import DATA_KINDS, KINDS, BuiltEvent
from idstation.mqtt.outbox_file import open_outbox
from idstation.mqtt.outbox_lanes import Lane, OutboxRow, count_lanes, fetch_pending, lane_queries, rows_of
from idstation.mqtt.outbox_receipts import ResendPolicy, delete_receipted, mark_at_broker
from idstation.mqtt.outbox_salvage import SalvageReport

log = structlog.get_logger(__name__)

SEQ_BLOCK = 1000

__all__ = ["Lane", "Outbox", "OutboxRow", "ResendPolicy"]


class Outbox:
    """One outbox file. Thread-safe (one connection behind a lock)."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        live_window_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        resend: ResendPolicy | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.live_window_s = live_window_s
        self.resend = resend or ResendPolicy()
        self._clock = clock
        self._lock = threading.RLock()
        self.set_aside: Path | None = None
        self.salvage: SalvageReport | None = None  # what a set-aside file still gave
        self.full_alarm = False
        self.disk_full = False  # the last write failed for want of space
        self.dropped_telemetry = 0
        self._pending_acks: set[int] = set()
        self._pending_marks: set[int] = set()  # at the broker, waiting for the centre's receipt
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db, self.set_aside, self.salvage = open_outbox(self.path)
        self._bytes = int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM events").fetchone()[0])
        self._seq = self._load_seq()
        # after a restart nobody knows what the broker still holds: waiting rows are sent again
        # one timeout from now at the latest (the retained receipt, fetched at once, covers the rest)
        soon = self._clock() + self.resend.timeout_s
        self._db.execute("UPDATE events SET next_try = ? WHERE at_broker IS NOT NULL AND next_try > ?", (soon, soon))

    def _seq_file(self) -> Path:
        return self.path.with_name(self.path.name + ".seq")

    def _load_seq(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        stored = row[0] if row else 0
        # salvaged rows carry their own numbers; seq never goes back below them
        held = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE data = 1").fetchone()[0]
        stored = max(stored, int(held))
        try:
            reserved = int(self._seq_file().read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            reserved = 0
        self._reserved = reserved
        if row is None and reserved > stored:
            log.warning("outbox_seq_resumed_from_reservation", seq=reserved)
            return reserved
        return stored

    def _reserve(self, seq: int) -> None:
        if seq <= self._reserved:
            return
        reserved = seq + SEQ_BLOCK
        write_atomic(self._seq_file(), f"{reserved}\n".encode("ascii"))
        self._reserved = reserved

    # --- writing --------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._seq

    def seq_floor(self) -> int:
        """The lowest data ``seq`` this outbox may still send: the lowest it holds, else the next
        number. Nothing below it will ever come from this box (rows only leave, new ones are higher)."""
        with self._lock:
            sql = "SELECT MIN(seq) FROM events INDEXED BY events_data_seq WHERE data = 1"
            low = self._db.execute(sql).fetchone()[0]
            return int(low) if low is not None else self._seq + 1

    @property
    def lock(self) -> threading.RLock:
        """Held by :meth:`append` from the commit through ``on_commit``: a reader that takes it
        sees a new row either in the database or through ``on_commit``, never both."""
        return self._lock

    def append(
        self,
        kind: str,
        topic: str,
        build: Callable[[int], BuiltEvent],
        *,
        retain: bool = False,
        on_commit: Callable[[OutboxRow], None] | None = None,
    ) -> OutboxRow | None:
        """Build the event with its ``seq`` and store it durably, in one transaction.

        Returns the stored row once it is committed, or None when a telemetry event was dropped
        because the outbox is full. Raises :class:`OutboxFull` for a data event that does not fit,
        :class:`OutboxDiskFull` when the file system is full, :class:`PublishError` for any other
        failed write (the number it would have taken is used by the next event).
        """
        if kind not in KINDS:
            raise TypeError(f"unknown event kind {kind!r}")
        data = kind in DATA_KINDS
        with self._lock:
            seq = self._seq + 1 if data else self._seq
            if data:
                try:
                    self._reserve(seq)
                except OSError as exc:
                    raise _write_error(exc) from None
            event = build(seq)
            size = len(event.frame)
            if data and self._bytes + size > self.max_bytes:
                self.full_alarm = True
                log.error("outbox_full_rejected", kind=kind, bytes=self._bytes, cap=self.max_bytes)
                raise OutboxFull("the outbox is full: the event was refused")
            stored = self._insert(kind, topic, event, seq, retain=retain)
            if stored is None:
                return None
            row_id, now, freed = stored
            if self.disk_full:
                self.disk_full = False
                log.info("outbox_disk_full_cleared")
            self._bytes += size - freed
            self._seq = seq
            lane = Lane.LIVE if data else Lane.TELEMETRY
            row = OutboxRow(row_id, event.event_id, kind, seq, topic, retain, size, now, event.frame, lane)
            if on_commit is not None:
                on_commit(row)  # still under the lock (see :attr:`lock`)
            return row

    def _insert(
        self, kind: str, topic: str, event: BuiltEvent, seq: int, *, retain: bool
    ) -> tuple[int, float, int] | None:
        """Store one built event in one transaction (telemetry evicted or statuses superseded to
        make room): its row id, the time stored and the bytes freed; None when a telemetry event
        does not fit. Caller holds the lock."""
        data = kind in DATA_KINDS
        size = len(event.frame)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            now = self._clock()
            need = self._bytes + size - self.max_bytes
            freed = self._evict_telemetry(need) if need > 0 else 0  # data never gets here over the cap
            if freed is None:
                self._rollback()
                self.dropped_telemetry += 1
                log.warning("outbox_full_telemetry_dropped", kind=kind)
                return None
            if kind == "status":
                freed += self._supersede_status()
            cur = self._db.execute(
                "INSERT INTO events (event_id, kind, data, seq, topic, retain, size, enqueued_at, frame)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event.event_id, kind, int(data), seq, topic, int(retain), size, now, event.frame),
            )
            if data:
                self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)", (seq,))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            error = _write_error(exc)
            self.disk_full = isinstance(error, OutboxDiskFull)
            log.error("outbox_write_failed", error=str(error))
            raise error from None
        return int(cur.lastrowid or 0), now, freed

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def _supersede_status(self) -> int:
        """Delete unsent older statuses (a new one supersedes them); the bytes freed."""
        cur = self._db.execute("DELETE FROM events WHERE kind = 'status' RETURNING size")
        return sum(r[0] for r in cur.fetchall())

    def _evict_telemetry(self, need: int) -> int | None:
        """Delete the oldest telemetry rows to free ``need`` bytes: the bytes freed, or None (no room).

        Data events are never evicted.
        """
        rows = self._db.execute("SELECT id, size FROM events WHERE data = 0 ORDER BY id").fetchall()
        victims, freed = [], 0
        for row_id, row_size in rows:
            if freed >= need:
                break
            victims.append(row_id)
            freed += row_size
        if freed < need:
            return None
        self._db.executemany("DELETE FROM events WHERE id = ?", [(v,) for v in victims])
        self.dropped_telemetry += len(victims)
        log.warning("outbox_telemetry_evicted", count=len(victims))
        return freed

    def ack(self, row_id: int) -> None:
        """The broker acknowledged this row: delete it (batched; see :meth:`flush_acks`)."""
        with self._lock:
            self._pending_acks.add(row_id)
            if len(self._pending_acks) >= 64:
                self.flush_acks()

    def mark_at_broker(self, row_id: int) -> None:
        """The broker took this data row: keep it until a receipt covers it; send it again when
        ``next_try`` passes (backoff per :class:`ResendPolicy`). Batched like :meth:`ack`."""
        with self._lock:
            self._pending_marks.add(row_id)
            if len(self._pending_marks) >= 64:
                self.flush_acks()

    def receipted(self, upto: int, above: Iterable[int]) -> int:
        """The centre holds data events ``1..upto`` and ``above``: delete them; the rows deleted."""
        with self._lock:
            self.flush_acks()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                gone = delete_receipted(self._db, upto, sorted(above))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                log.warning("outbox_receipt_failed", error=type(exc).__name__)
                return 0
            self._bytes -= sum(size for _id, size in gone)
            self._pending_marks -= {row_id for row_id, _size in gone}
            self._clear_full_alarm()
            return len(gone)

    def flush_acks(self) -> None:
        with self._lock:
            self._flush_marks()
            if not self._pending_acks:
                return
            ids, self._pending_acks = sorted(self._pending_acks), set()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                freed = 0
                for chunk in _chunks(ids, 500):
                    marks = ",".join("?" * len(chunk))
                    cur = self._db.execute(f"DELETE FROM events WHERE id IN ({marks}) RETURNING size", chunk)  # noqa: S608
                    freed += sum(r[0] for r in cur.fetchall())
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._pending_acks |= set(ids)
                log.warning("outbox_ack_failed", error=type(exc).__name__)
                return
            self._bytes -= freed
            self._clear_full_alarm()

    def _clear_full_alarm(self) -> None:
        if self.full_alarm and self._bytes < self.max_bytes * 0.9:
            self.full_alarm = False
            log.info("outbox_full_cleared")

    def _flush_marks(self) -> None:
        if not self._pending_marks:
            return
        ids, self._pending_marks = sorted(self._pending_marks), set()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            mark_at_broker(self._db, ids, self._clock(), self.resend)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._pending_marks |= set(ids)
            log.warning("outbox_mark_failed", error=type(exc).__name__)

    # --- reading --------------------------------------------------------------------------------

    def pending(self, lane: Lane, limit: int, exclude: Iterable[int] = ()) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows of ``lane`` in order, skipping ids in ``exclude`` (in flight)."""
        if limit <= 0:
            return []
        now = self._clock()
        cutoff = now - self.live_window_s
        queries = lane_queries(lane, now, cutoff)
        with self._lock:
            skip = set(exclude) | self._pending_acks | self._pending_marks
            rows = fetch_pending(self._db, queries, limit + len(skip))
        return rows_of(rows, lane, skip)[:limit]

    def depth(self) -> dict[str, Any]:
        """Rows per lane, rows at the broker waiting for a receipt (and the age of the oldest, s),
        and bytes stored (acks not yet flushed count as sent)."""
        now = self._clock()
        cutoff = now - self.live_window_s
        with self._lock:
            live, backlog, telemetry, waiting, oldest = count_lanes(self._db, cutoff)
            pending = len(self._pending_acks)
        return {
            "live": int(live),
            "backlog": int(backlog),
            "telemetry": int(telemetry),
            "awaiting_receipt": int(waiting),
            "oldest_awaiting_s": round(max(0.0, now - oldest), 1) if oldest is not None else None,
            "total": int(live + backlog + telemetry + waiting) - pending,
            "bytes": self._bytes,
        }

    def close(self) -> None:
        with self._lock:
            self.flush_acks()
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    def __repr__(self) -> str:
        return f"Outbox(path={str(self.path)!r}, bytes={self._bytes}, last_seq={self._seq})"


def _write_error(exc: BaseException) -> PublishError:
    """The typed error for a failed outbox write; a full file system is :class:`OutboxDiskFull`."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL" or getattr(exc, "errno", None) == errno.ENOSPC:
        return OutboxDiskFull("outbox write failed: the disk is full")
    return PublishError(f"outbox write failed: {name or type(exc).__name__}")


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
