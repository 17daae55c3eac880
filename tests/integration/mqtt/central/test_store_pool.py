"""The PostgreSQL store's pool checks a connection with a round trip only when it sat idle for
IDLE_CHECK_S: one the server dropped meanwhile is replaced unseen; one dropped while in use makes
the next batch StoreUnavailable (the listener waits for the store), and the batch after that works."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from idstation.mqtt.central.store import StoreUnavailable, open_store
from idstation.mqtt.central.store.postgres import IDLE_CHECK_S

from tests.integration.mqtt.central.conftest import incoming


def _drop_connections(url: str) -> int:
    """Terminate every other session on the database (as a server restart does to them)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


@pytest.fixture
def store(postgres_url: str) -> Any:
    s = open_store(postgres_url, migrate=True, min_size=1, max_size=1)
    yield s
    s.close()


def test_a_connection_dropped_while_idle_is_replaced_unseen(store: Any, postgres_url: str) -> None:
    assert store.record([incoming(1)])[0].accepted
    assert _drop_connections(postgres_url) >= 1
    time.sleep(IDLE_CHECK_S + 0.2)
    assert store.record([incoming(2)])[0].accepted  # checked with a round trip, replaced
    assert store.max_seq("box-1") == 2


def test_a_connection_dropped_just_after_use_fails_one_batch_only(store: Any, postgres_url: str) -> None:
    assert store.record([incoming(1)])[0].accepted
    assert _drop_connections(postgres_url) >= 1
    with pytest.raises(StoreUnavailable):
        store.record([incoming(2)])  # not checked (used a moment ago): the batch fails, nothing held
    deadline = time.monotonic() + 10
    while True:  # the pool replaces the broken connection in the background
        try:
            assert store.record([incoming(2)])[0].accepted
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert store.max_seq("box-1") == 2
