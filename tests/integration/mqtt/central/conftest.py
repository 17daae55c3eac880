"""Stores for the central tests: the same behaviour tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from idstation.mqtt.central.store import Incoming, Store, open_store, sqlite_url

_SEQ = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "central.sqlite")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url, migrate=True)
    yield s
    s.close()


def incoming(
    seq: int = 1,
    *,
    kind: str = "identity",
    device_id: str = "box-1",
    key_id: str = "k1",
    event_id: str | None = None,
    received_at: float | None = None,
    **header: Any,
) -> Incoming:
    """A verified event as the listener hands it to the store (the frame is opaque bytes here)."""
    event_id = event_id or str(uuid.uuid4())
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{next(_SEQ) % 1000:03d}Z"
    full = {
        "v": 1,
        "kind": kind,
        "event_id": event_id,
        "device_id": device_id,
        "key_id": key_id,
        "seq": seq,
        "site": "hn-01",
        "counter_id": "c01",
        "created_at": created,
        **header,
    }
    return Incoming(
        event_id,
        device_id,
        key_id,
        seq,
        kind,
        "hn-01",
        "c01",
        created,
        received_at if received_at is not None else time.time(),
        full,
        b"frame:" + event_id.encode(),
    )
