"""Opening the outbox file: integrity check, schema (and its migrations), a corrupt file set aside.

``open_outbox`` runs ``PRAGMA quick_check``; a file that fails it (or is no database at all) is
renamed ``<path>.corrupt-<UTC time>`` (with its ``-wal``/``-shm``), a new file is started, and
every row the old one still gives (:mod:`~idstation.mqtt.outbox_salvage`) is carried into it.
Schema 1 files gain the receipt columns (``at_broker``, ``next_try``, ``attempts``) in place.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

import structlog
from idstation.mqtt.errors import OutboxCorrupt
from idstation.mqtt.outbox_salvage import SalvageReport, salvage_rows

log = structlog.get_logger(__name__)

__all__ = ["SCHEMA", "open_outbox"]

SCHEMA = 2  # 2: at_broker, next_try, attempts (kept until the centre's receipt)
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    data INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    retain INTEGER NOT NULL,
    size INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,
    frame BLOB NOT NULL,
    at_broker REAL,
    next_try REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_lane ON events (data, enqueued_at, id);
"""
# After the migration (they name its columns). Partial indexes, so that no lane query, count or
# receipt reads a row's columns behind its frame (a 30 KB blob in overflow pages): measured with
# 2,000 identity events waiting, a backlog query took 39 ms without them.
_INDEX_SQL = """
CREATE INDEX IF NOT EXISTS events_unsent ON events (enqueued_at, id) WHERE data = 1 AND at_broker IS NULL;
CREATE INDEX IF NOT EXISTS events_waiting ON events (next_try, enqueued_at) WHERE at_broker IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_data_seq ON events (seq) WHERE data = 1;
"""
_MIGRATE_1_TO_2 = (
    "ALTER TABLE events ADD COLUMN at_broker REAL",
    "ALTER TABLE events ADD COLUMN next_try REAL",
    "ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    db.text_factory = _text  # damaged text never raises on read: the frame (a BLOB) is what is sent
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def open_outbox(path: Path) -> tuple[sqlite3.Connection, Path | None, SalvageReport | None]:
    """The outbox database at ``path``, checked and at the current schema; a corrupt one is set aside,
    a new one started and what the old one still holds salvaged into it: ``(db, set_aside, salvage)``."""
    db: sqlite3.Connection | None = None
    try:
        db = _connect(path)
        result = db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise OutboxCorrupt("outbox failed its integrity check")
        db.executescript(_SCHEMA_SQL)
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is None:
            db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA,))
        elif version[0] == 1:
            for statement in _MIGRATE_1_TO_2:
                db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA,))
        elif version[0] != SCHEMA:
            raise OutboxCorrupt("outbox has an unknown schema version")
        db.executescript(_INDEX_SQL)
        return db, None, None
    except (sqlite3.DatabaseError, OutboxCorrupt, ValueError) as exc:  # ValueError: damaged text (UTF-8)
        if db is not None:
            db.close()
        set_aside = _set_aside(path, type(exc).__name__)
        db = _connect(path)
        db.executescript(_SCHEMA_SQL + _INDEX_SQL)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA,))
        return db, set_aside, _salvage(db, set_aside)


def _salvage(db: sqlite3.Connection, set_aside: Path) -> SalvageReport:
    """Carry every intact row of the set-aside file into the new one (same bytes, same seq)."""
    rows, report = salvage_rows(set_aside)
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT OR IGNORE INTO events (event_id, kind, data, seq, topic, retain, size, enqueued_at, frame)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(r.event_id, r.kind, r.data, r.seq, r.topic, r.retain, r.size, r.enqueued_at, r.frame) for r in rows],
    )
    db.execute("COMMIT")
    return report


def _set_aside(path: Path, why: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, f"{target}{suffix}")
    log.error("outbox_corrupt_set_aside", file=str(target), error=why)
    return target
