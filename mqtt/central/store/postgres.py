"""The shared store: PostgreSQL through psycopg 3 and a connection pool (psycopg_pool).

Any number of listener processes on any number of hosts share one database. A batch's
transaction first takes a transaction-level advisory lock (:data:`BATCH_LOCK`), so batches
commit one after another and the cursors an identity column hands out inside them increase in
commit order: a reader that resumes after cursor C never misses a row committed later with a
smaller cursor (a plain BIGSERIAL does not promise that with concurrent writers). The stream
rows are also locked (``SELECT ... FOR UPDATE``), so the gap and replay state stays exact
should the advisory lock ever be narrowed. Measured on this 2-core machine (issue 13): 50
events per transaction reach 15,000-19,000 events/s, so one commit at a time is not the limit.

A lost connection, a server that is down or a pool that has no connection within ``timeout``
is :class:`StoreUnavailable` (the listener stops consuming and waits); other failures are
:class:`StoreError`.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from idstation.mqtt.central.store.base import Incoming, Outcome
from idstation.mqtt.central.store.deliveries import Deliveries
from idstation.mqtt.central.store.engine import Exec, SqlStore
from idstation.mqtt.central.store.pg_batch import record_batch
from idstation.mqtt.errors import StoreError, StoreUnavailable

__all__ = ["BATCH_LOCK", "MIGRATION_LOCK", "PostgresStore", "redact_url"]

_MARK_BATCHES = (
    "INSERT INTO delivered_batches (batch, at) SELECT unnest(%b::bigint[]), %b::float8 ON CONFLICT DO NOTHING"
)
_MARK_ROWS = "UPDATE events SET delivered = TRUE WHERE cursor = ANY(%b::bigint[])"
IDLE_CHECK_S = 1.0  # a pooled connection idle longer is checked with a round trip before use
BATCH_LOCK = 0x1D57_0001  # pg_advisory_xact_lock keys (bigint), private to idstation
MIGRATION_LOCK = 0x1D57_0002


def redact_url(url: str) -> str:
    """The URL without its password (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


@contextmanager
def _mapped() -> Iterator[None]:
    import psycopg
    from psycopg_pool import PoolClosed, PoolTimeout

    try:
        yield
    except (psycopg.OperationalError, PoolTimeout, PoolClosed) as exc:
        raise StoreUnavailable(f"postgresql store unavailable: {type(exc).__name__}") from None
    except psycopg.Error as exc:
        raise StoreError(f"postgresql store failed: {type(exc).__name__}: {exc.diag.message_primary or ''}") from None


class PostgresStore(SqlStore):
    dialect = "postgresql"
    greatest = "GREATEST"
    for_update = " FOR UPDATE"
    hour_expr = "floor(received_at / 3600)::bigint"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 5.0) -> None:
        self.url = redact_url(url)
        self.timeout = timeout
        self._dsn, self._sizes = url, (min_size, max_size)
        self._swap = threading.Lock()
        self._deliveries = Deliveries()
        self._used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()  # connection -> last use
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(
            self._dsn,
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            open=False,
            kwargs={"autocommit": True, "connect_timeout": max(2, int(self.timeout))},
            check=self._check,
            reconnect_timeout=24 * 3600.0,
            name="idstation-store",
        )
        with _mapped():
            pool.open(wait=False)
        return pool

    def _check(self, conn: Any) -> None:
        """The pool's check of a connection it hands out. ``check_connection`` is a round trip to
        the server (an empty query): once per checkout, two per batch, it cost the commit thread
        ~4 us and PostgreSQL ~4 us of CPU per event (bench/commit_path.py). Only a connection idle
        for :data:`IDLE_CHECK_S` is checked that way (one the server may have dropped meanwhile);
        a recently used one is checked locally, and should it have died since, the batch fails as
        :class:`StoreUnavailable` and the listener waits for the store as for any outage."""
        import psycopg
        from psycopg_pool import ConnectionPool

        if conn.broken or conn.closed:
            raise psycopg.OperationalError("the connection is closed")
        used = self._used.get(conn)
        if used is None or time.monotonic() - used > IDLE_CHECK_S:
            ConnectionPool.check_connection(conn)

    def ping(self) -> None:
        """Answer within ~3 s. After an outage the pool may be waiting out its reconnection backoff
        (it doubles up to tens of seconds): a direct connection that succeeds replaces the pool, so
        consumption resumes as soon as the server is back."""
        try:
            with _mapped(), self._pool.connection(timeout=1.0) as conn:
                conn.execute("SELECT 1")
                return
        except StoreUnavailable:
            pass
        import psycopg

        with _mapped():
            psycopg.connect(self._dsn, connect_timeout=2, autocommit=True).close()
        with self._swap:
            old, self._pool = self._pool, self._new_pool()
        old.close(timeout=1.0)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with _mapped(), self._pool.connection(timeout=self.timeout) as conn:
            try:
                yield conn
            finally:
                self._used[conn] = time.monotonic()  # before the pool has it back

    @staticmethod
    def _executor(conn: Any) -> Exec:
        def x(sql: str, params: Any = ()) -> Any:
            return conn.execute(_pg(sql), params or None)

        return x

    @contextmanager
    def _write(self) -> Iterator[Exec]:
        with self._connection() as conn, conn.transaction():
            yield self._executor(conn)

    @contextmanager
    def _read(self) -> Iterator[Exec]:
        with self._connection() as conn:
            yield self._executor(conn)

    def record(self, batch: Sequence[Incoming]) -> list[Outcome]:
        """One transaction in two round trips whatever the batch size (:mod:`.pg_batch`)."""
        if not batch:
            return []
        batch_id = self._deliveries.new_batch()
        with self._connection() as conn, conn.pipeline(), conn.transaction():
            outcomes = record_batch(conn, batch, BATCH_LOCK, batch_id)
        self._deliveries.recorded(batch_id, outcomes)  # committed
        return outcomes

    def mark_delivered(self, cursors: Sequence[int]) -> None:
        """One round trip, committed without waiting for the disk (a lost mark only means the event
        is delivered once more after a crash: at least once); a batch recorded here and delivered
        whole is one small row (:mod:`.deliveries`)."""
        if not cursors:
            return
        whole, rest = self._deliveries.split(cursors)
        with self._connection() as conn, conn.pipeline(), conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            if whole:
                conn.execute(_MARK_BATCHES, (whole, time.time()), binary=True)
            if rest:
                conn.execute(_MARK_ROWS, (rest,), binary=True)

    def _begin_batch(self, x: Exec) -> None:
        x("SELECT pg_advisory_xact_lock(?)", (BATCH_LOCK,))

    def _begin_migration(self, x: Exec) -> None:
        x("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _has_table(self, x: Exec, name: str) -> bool:
        return bool(x("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0])

    def _json_in(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def _json_out(self, value: Any) -> Any:
        return value

    def close(self) -> None:
        self._pool.close()
