"""The central store: accepted events, stream state (gaps, replays), device state, audit.

``open_store(url)``: ``sqlite:///abs/path`` (or a plain file path) for the embedded store,
``postgresql://user@host:port/db`` for the shared one. See ``base.py`` for the interface and its
theory of operation, ``engine.py`` for the SQL both share (``rows.py``: device rows and
telemetry/duplicate outcomes; ``schema.py``: reading the migrations), ``migrations/<backend>/NNNN_*.sql``
for the schema (applied by :meth:`Store.migrate`, ``idstation central migrate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from idstation.mqtt.central.store.base import Incoming, Outcome, Store, StoredEvent, Verdict
from idstation.mqtt.errors import StoreError, StoreUnavailable

__all__ = [
    "Incoming",
    "Outcome",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredEvent",
    "Verdict",
    "open_store",
    "sqlite_url",
]


def sqlite_url(path: str | Path) -> str:
    return f"sqlite://{Path(path).resolve()}"


def open_store(url: str, *, migrate: bool = False, **options: Any) -> Store:
    """Open the store a URL names; ``migrate=True`` applies pending migrations first.

    A bad URL is a :class:`StoreError`; a database that cannot be reached, :class:`StoreUnavailable`.
    """
    store: Store
    if url.startswith(("postgresql://", "postgres://")):
        from idstation.mqtt.central.store.postgres import PostgresStore

        store = PostgresStore(url, **options)
    elif url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        if not path.startswith("/") or not path.strip("/"):
            raise StoreError("a sqlite store URL is sqlite:///absolute/path")
        path = "/" + path.lstrip("/")  # sqlite:////abs/path (SQLAlchemy's spelling) names the same file
        from idstation.mqtt.central.store.sqlite import SqliteStore

        store = SqliteStore(path, **options)
    elif "://" not in url and url:
        from idstation.mqtt.central.store.sqlite import SqliteStore

        store = SqliteStore(url, **options)
    else:
        raise StoreError("a store URL is sqlite:///path or postgresql://user@host:port/database")
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store
