"""Shared pytest set-up. Service fixtures live in tests/fixtures/ (one module per real service)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import settings

# Timings belong in bench/, not in pass/fail tests: hypothesis's per-example deadline (200 ms)
# fails a correct example when the two shared cores are busy, so it is off everywhere.
settings.register_profile("idstation", deadline=None)
settings.load_profile("idstation")

pytest_plugins = [
    "tests.fixtures.pcsc",  # pcscd + vpcd with the virtual chip
    "tests.fixtures.broker",  # real mosquitto on loopback (plain, TLS, mTLS, ACL)
    "tests.fixtures.postgres",  # a throw-away PostgreSQL 15 cluster on loopback
    "tests.fixtures.rabbitmq",  # a throw-away 3-node RabbitMQ cluster (MQTT plugin) on loopback
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands run in process (``main()``) configure logging; give every next test the defaults back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_idstation", False)]:
        root.removeHandler(handler)
