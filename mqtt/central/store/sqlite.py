"""The embedded store: one SQLite file (WAL), for a site, the demo or tests.

Several listener processes on one host may share the file: ``BEGIN IMMEDIATE`` serialises
writers, so a cursor (``INTEGER PRIMARY KEY AUTOINCREMENT``, never reused) follows commit order.
``synchronous=FULL``: a batch the broker was told about survives a power cut, not just a crash.
Within a process one connection is shared under a lock (sqlite3 objects are not thread-safe).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from idstation.mqtt.central.store.deliveries import Deliveries
from idstation.mqtt.central.store.engine import Exec, SqlStore
from idstation.mqtt.errors import StoreError, StoreUnavailable
from idstation.mqtt.json_text import compact_json

__all__ = ["SqliteStore"]


@contextmanager
def _mapped() -> Iterator[None]:
    """sqlite3's errors as ours: a busy or unopenable database is unavailable; others are errors."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"sqlite store unavailable: {exc}") from None
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store failed: {type(exc).__name__}: {exc}") from None


class SqliteStore(SqlStore):
    dialect = "sqlite"
    greatest = "max"
    for_update = ""  # BEGIN IMMEDIATE already holds the write lock
    hour_expr = "CAST(received_at / 3600 AS INTEGER)"

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite://{self.path.resolve()}"
        self._lock = threading.Lock()
        self._deliveries = Deliveries()
        with _mapped():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=timeout)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")

    def _exec(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def _many(self, x: Exec, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    @contextmanager
    def _write(self) -> Iterator[Exec]:
        with self._lock, _mapped():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._exec
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[Exec]:
        with self._lock, _mapped():
            yield self._exec

    def mark_delivered(self, cursors: Sequence[int]) -> None:
        """Without an fsync (``synchronous=NORMAL`` for this one commit): a mark lost to a power cut
        only means one more delivery. A batch recorded here and delivered whole is one row."""
        if not cursors:
            return
        whole, rest = self._deliveries.split(cursors)
        with self._lock, _mapped():
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                now = time.time()
                self._db.executemany(
                    "INSERT INTO delivered_batches (batch, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(b, now) for b in whole],
                )
                self._db.executemany("UPDATE events SET delivered = TRUE WHERE cursor = ?", [(c,) for c in rest])
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._db.execute("PRAGMA synchronous=FULL")

    def _has_table(self, x: Exec, name: str) -> bool:
        return x("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def _json_in(self, value: Any) -> Any:
        return compact_json(value)  # json.dumps(value, ensure_ascii=False, separators=(",", ":")), faster

    def _json_out(self, value: Any) -> Any:
        return json.loads(value)

    def close(self) -> None:
        with self._lock:
            self._db.close()
