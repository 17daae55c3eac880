"""The SQL both backends share: recording a batch, the readers, running the migrations.

A backend (``sqlite.py``, ``postgres.py``) supplies a transaction (:meth:`SqlStore._write`), a
read connection (:meth:`SqlStore._read`) and declares its dialect as class attributes; the SQL
here is written once with ``?`` placeholders (PostgreSQL's driver gets ``%s``). Parameters are
always bound, never formatted into SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from idstation.mqtt.central.store.base import (
    Incoming,
    Outcome,
    StoredEvent,
    StreamState,
    Verdict,
    classify,
    seq_floor,
    with_receipts,
)
from idstation.mqtt.central.store.deliveries import DELIVERED, Deliveries
from idstation.mqtt.central.store.rows import NEWER, UPSERT_DEVICE, device_rows, duplicate, telemetry_outcome
from idstation.mqtt.central.store.schema import migrations, statements
from idstation.mqtt.receipt import receipt_range

Exec = Callable[..., Any]  # x(sql, params=()) -> a DB-API cursor

_EVENT_COLUMNS = "cursor, event_id, device_id, key_id, seq, kind, site, counter, created_at, received_at, header, frame"
_INSERT_EVENT = (
    "INSERT INTO events (event_id, device_id, key_id, seq, kind, site, counter, reason, created_at, received_at,"
    " header, frame, batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
    " RETURNING cursor"
)
_NEW_STREAM = "INSERT INTO streams (device_id, key_id, max_seq) VALUES (?, ?, 0) ON CONFLICT DO NOTHING"
_HELD = f"SELECT cursor, {DELIVERED}, frame FROM events WHERE event_id = ?"  # noqa: S608


class SqlStore:
    """The shared implementation of :class:`~idstation.mqtt.central.store.base.Store`."""

    dialect = ""  # migrations folder name
    greatest = "max"  # SQL function of two arguments
    for_update = ""  # row lock suffix on SELECT
    hour_expr = "CAST(received_at / 3600 AS INTEGER)"
    url = ""
    _deliveries: Deliveries  # set by the backend's __init__

    # --- backend hooks -------------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[Exec]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Exec]:
        raise NotImplementedError

    def _begin_batch(self, x: Exec) -> None:
        """Serialise batches so cursors follow commit order (PostgreSQL: an advisory lock)."""

    def _begin_migration(self, x: Exec) -> None:
        """Keep two migrating processes apart (PostgreSQL: an advisory lock)."""

    def _has_table(self, x: Exec, name: str) -> bool:
        raise NotImplementedError

    def _json_in(self, value: Any) -> Any:
        raise NotImplementedError

    def _json_out(self, value: Any) -> Any:
        raise NotImplementedError

    def _many(self, x: Exec, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``sql`` once per row, in order (SQLite: ``executemany``, its loop in C)."""
        for row in rows:
            x(sql, row)

    # --- schema --------------------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._read() as x:
            if not self._has_table(x, "schema_version"):
                return 0
            return int(x("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])

    def migrate(self) -> int:
        with self._write() as x:
            self._begin_migration(x)
            x("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            current = int(x("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])
            for number, sql in migrations(self.dialect):
                if number <= current:
                    continue
                for statement in statements(sql):
                    x(statement)
                applied = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                x("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (number, applied))
                current = number
            return current

    def ping(self) -> None:
        with self._read() as x:
            x("SELECT 1").fetchone()

    # --- recording -----------------------------------------------------------------------------

    def record(self, batch: Sequence[Incoming]) -> list[Outcome]:
        if not batch:
            return []
        batch_id = self._deliveries.new_batch()
        with self._write() as x:
            self._begin_batch(x)
            # every data event's stream (a duplicate's too: its receipt state), in three statements
            streams = self._load_streams(x, sorted({(e.device_id, e.key_id) for e in batch if e.data}))
            fresh: set[str] = set()  # event ids this batch has seen
            outcomes = [self._record_one(x, event, streams, fresh, batch_id) for event in batch]
            self._save_streams(x, streams)
            self._save_devices(x, batch, outcomes)
        self._deliveries.recorded(batch_id, outcomes)  # committed
        return with_receipts(batch, outcomes, streams)

    def _record_one(
        self, x: Exec, e: Incoming, streams: dict[tuple[str, str], StreamState], fresh: set[str], batch: int
    ) -> Outcome:
        reason = e.header.get("reason") if e.kind == "read_failed" else None
        params = (e.event_id, e.device_id, e.key_id, e.seq, e.kind, e.site, e.counter, reason, e.created_at)
        row = x(_INSERT_EVENT, (*params, e.received_at, self._json_in(e.header), e.frame, batch)).fetchone()
        key = (e.device_id, e.key_id)
        if row is None:
            if e.data and key not in streams:  # its receipt state (the box may lack a receipt)
                streams[key] = self._load_stream(x, *key)
            if e.event_id in fresh:
                return Outcome(Verdict.DUPLICATE)
            held = x(_HELD, (e.event_id,)).fetchone()
            fresh.add(e.event_id)  # a second copy in this batch is a plain duplicate
            return duplicate(held, e.frame)
        fresh.add(e.event_id)
        cursor = int(row[0])
        if not e.data:
            if seq_floor(e.header) is not None and key not in streams:
                streams[key] = self._load_stream(x, *key)
            return telemetry_outcome(e, streams.get(key), cursor)
        state = streams.get(key)
        if state is None:
            state = streams[key] = self._load_stream(x, *key)
        outcome = classify(state, e.seq, cursor)
        if outcome.verdict is Verdict.REPLAY:
            x("DELETE FROM events WHERE cursor = ?", (cursor,))
        return outcome

    def _load_stream(self, x: Exec, device_id: str, key_id: str) -> StreamState:
        """Lock the stream's row (created at 0 if new) and read its gaps."""
        key = (device_id, key_id)
        x(_NEW_STREAM, key)
        sql = "SELECT max_seq FROM streams WHERE device_id = ? AND key_id = ?" + self.for_update  # noqa: S608
        max_seq = int(x(sql, key).fetchone()[0])
        rows = x("SELECT lo, hi FROM gaps WHERE device_id = ? AND key_id = ? ORDER BY lo", (device_id, key_id))
        gaps = [(int(lo), int(hi)) for lo, hi in rows.fetchall()]
        return StreamState(max_seq, gaps, loaded=frozenset(gaps))

    def _load_streams(self, x: Exec, keys: list[tuple[str, str]]) -> dict[tuple[str, str], StreamState]:
        """:meth:`_load_stream` of many streams: create the new ones, lock and read them with their
        gaps, 400 streams a query."""
        self._many(x, _NEW_STREAM, keys)
        states: dict[tuple[str, str], StreamState] = {}
        for i in range(0, len(keys), 400):
            chunk = keys[i : i + 400]
            where = "(device_id, key_id) IN (VALUES " + ", ".join("(?, ?)" for _ in chunk) + ")"
            args = [part for key in chunk for part in key]
            highs = x(f"SELECT device_id, key_id, max_seq FROM streams WHERE {where}{self.for_update}", args)  # noqa: S608
            for d, k, max_seq in highs.fetchall():
                states[(d, k)] = StreamState(int(max_seq))
            gaps = x(f"SELECT device_id, key_id, lo, hi FROM gaps WHERE {where} ORDER BY device_id, key_id, lo", args)  # noqa: S608
            for d, k, lo, hi in gaps.fetchall():
                states[(d, k)].gaps.append((int(lo), int(hi)))
        for state in states.values():
            state.loaded = frozenset(state.gaps)
        return states

    def _save_streams(self, x: Exec, streams: dict[tuple[str, str], StreamState]) -> None:
        """The changed streams' highest seq, then their gaps: the dropped ones, then the new ones."""
        changed = [(key, state) for key, state in streams.items() if state.dirty]
        self._many(x, "UPDATE streams SET max_seq = ? WHERE device_id = ? AND key_id = ?",
                   [(state.max_seq, d, k) for (d, k), state in changed])  # fmt: skip
        dropped = [(d, k, lo) for (d, k), state in changed for lo, _hi in state.loaded - set(state.gaps)]
        self._many(x, "DELETE FROM gaps WHERE device_id = ? AND key_id = ? AND lo = ?", dropped)
        added = [(d, k, lo, hi) for (d, k), state in changed for lo, hi in sorted(set(state.gaps) - state.loaded)]
        self._many(x, "INSERT INTO gaps (device_id, key_id, lo, hi) VALUES (?, ?, ?, ?)", added)

    def _save_devices(self, x: Exec, batch: Sequence[Incoming], outcomes: Sequence[Outcome]) -> None:
        sql = UPSERT_DEVICE.format(greatest=self.greatest, newer=NEWER)
        self._many(x, sql, device_rows(batch, outcomes, self._json_in))

    # --- readers -------------------------------------------------------------------------------

    def receipt_state(self, device_id: str, key_id: str) -> tuple[int, list[int]]:
        with self._read() as x:
            row = x("SELECT max_seq FROM streams WHERE device_id = ? AND key_id = ?", (device_id, key_id)).fetchone()
            if row is None:
                return 0, []
            gaps = x("SELECT lo, hi FROM gaps WHERE device_id = ? AND key_id = ?", (device_id, key_id)).fetchall()
        upto, above = receipt_range(int(row[0]), [(int(lo), int(hi)) for lo, hi in gaps])
        return int(upto), list(above)

    def receipt_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, list[int]]]:
        """``receipt_state`` of many streams in two queries per 400 streams (a stream never
        recorded is ``(0, [])``)."""
        out: dict[tuple[str, str], tuple[int, list[int]]] = {key: (0, []) for key in keys}
        unique = list(out)
        for i in range(0, len(unique), 400):
            chunk = unique[i : i + 400]
            where = "(device_id, key_id) IN (VALUES " + ", ".join("(?, ?)" for _ in chunk) + ")"
            args = [part for key in chunk for part in key]
            with self._read() as x:
                highs = x(f"SELECT device_id, key_id, max_seq FROM streams WHERE {where}", args).fetchall()  # noqa: S608
                rows = x(f"SELECT device_id, key_id, lo, hi FROM gaps WHERE {where}", args).fetchall()  # noqa: S608
            gaps: dict[tuple[str, str], list[tuple[int, int]]] = {}
            for d, k, lo, hi in rows:
                gaps.setdefault((d, k), []).append((int(lo), int(hi)))
            for d, k, max_seq in highs:
                upto, above = receipt_range(int(max_seq), gaps.get((d, k), []))
                out[(d, k)] = (int(upto), list(above))
        return out

    def events_after(
        self,
        cursor: int,
        limit: int = 1000,
        *,
        site: str | None = None,
        counter: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[StoredEvent]:
        where: list[str] = ["cursor > ?"]
        args: list[Any] = [cursor]
        for column, value in (("site", site), ("counter", counter)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if kinds:
            where.append(f"kind IN ({', '.join('?' for _ in kinds)})")
            args.extend(kinds)
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY cursor LIMIT ?"  # noqa: S608
        with self._read() as x:
            return [self._stored(r) for r in x(sql, (*args, limit)).fetchall()]

    def latest_event(
        self, site: str, counter: str, kinds: Sequence[str], since: float | None = None
    ) -> StoredEvent | None:
        marks = ", ".join("?" for _ in kinds)
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE site = ? AND counter = ? AND kind IN ({marks})"  # noqa: S608
            " AND received_at >= ? ORDER BY cursor DESC LIMIT 1"
        )
        with self._read() as x:
            row = x(sql, (site, counter, *kinds, since if since is not None else 0.0)).fetchone()
        return self._stored(row) if row else None

    def _stored(self, r: Sequence[Any]) -> StoredEvent:
        header = self._json_out(r[10])
        cursor, seq, received_at, frame = int(r[0]), int(r[4]), float(r[9]), bytes(r[11])
        return StoredEvent(r[1], r[2], r[3], seq, r[5], r[6], r[7], r[8], received_at, header, frame, cursor=cursor)

    def device_states(self) -> list[dict[str, Any]]:
        sql = (
            "SELECT device_id, site, counter, last_seen, state, info, state_at, last_event_at FROM device_state"
            " ORDER BY device_id"
        )
        with self._read() as x:
            rows = x(sql).fetchall()
        keys = ("device_id", "site", "counter", "last_seen", "state", "info", "state_at", "last_event_at")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for row in out:
            row["info"] = self._json_out(row["info"]) if row["info"] is not None else {}
        return out

    def failure_counts(self, since: float) -> dict[str, dict[str, int]]:
        sql = (
            "SELECT device_id, reason, COUNT(*) FROM events WHERE kind = 'read_failed' AND received_at >= ?"
            " GROUP BY device_id, reason"
        )
        counts: dict[str, dict[str, int]] = {}
        with self._read() as x:
            for device_id, reason, n in x(sql, (since,)).fetchall():
                counts.setdefault(device_id, {})[reason or ""] = int(n)
        return counts

    def hourly_counts(self, since: float) -> list[dict[str, Any]]:
        sql = (
            f"SELECT device_id, {self.hour_expr} AS hour, kind, COUNT(*) FROM events"  # noqa: S608
            " WHERE received_at >= ? GROUP BY device_id, hour, kind ORDER BY hour, device_id, kind"
        )
        with self._read() as x:
            rows = x(sql, (since,)).fetchall()
        return [
            {"device_id": d, "hour": time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(int(h) * 3600)), "kind": k,
             "count": int(n)}
            for d, h, k, n in rows
        ]  # fmt: skip

    def head(self) -> int:
        """The highest cursor committed (0 when empty): ``events_after(head())`` misses nothing later."""
        with self._read() as x:
            return int(x("SELECT COALESCE(MAX(cursor), 0) FROM events").fetchone()[0])

    def add_audit(self, client: str, event_id: str, endpoint: str, at: float) -> None:
        with self._write() as x:
            sql = "INSERT INTO audit (client, event_id, endpoint, at) VALUES (?, ?, ?, ?)"
            x(sql, (client, event_id, endpoint, at))

    def audit_since(self, since: float) -> list[dict[str, Any]]:
        sql = "SELECT client, event_id, endpoint, at FROM audit WHERE at >= ? ORDER BY id"
        with self._read() as x:
            rows = x(sql, (since,)).fetchall()
        return [{"client": c, "event_id": e, "endpoint": p, "at": float(a)} for c, e, p, a in rows]

    def purge(self, before: float, *, chunk: int = 10_000) -> int:
        """Delete events received before ``before`` (streams and gaps are kept: seq still catches
        replays), ``chunk`` rows per transaction so no transaction grows with the backlog."""
        sql = (
            "DELETE FROM events WHERE cursor IN"
            " (SELECT cursor FROM events WHERE received_at < ? ORDER BY cursor LIMIT ?)"
        )
        removed = 0
        for _ in range(1_000_000):  # bounded: each turn removes a chunk or ends
            with self._write() as x:
                n = int(x(sql, (before, chunk)).rowcount)
            removed += n
            if n < chunk:
                break
        with self._write() as x:  # a batch's mark outlives none of its events (marked after they arrived)
            x("DELETE FROM delivered_batches WHERE at < ?", (before,))
        return removed

    def gaps(self, device_id: str | None = None) -> list[tuple[str, int, int]]:
        sql = "SELECT device_id, lo, hi FROM gaps"
        args: tuple[str, ...] = ()
        if device_id is not None:
            sql, args = sql + " WHERE device_id = ?", (device_id,)
        with self._read() as x:
            return [(r[0], int(r[1]), int(r[2])) for r in x(sql + " ORDER BY device_id, lo", args).fetchall()]

    def max_seq(self, device_id: str) -> int | None:
        with self._read() as x:
            row = x("SELECT MAX(max_seq) FROM streams WHERE device_id = ?", (device_id,)).fetchone()
        return int(row[0]) if row and row[0] is not None else None
