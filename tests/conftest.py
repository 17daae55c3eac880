"""Shared pytest set-up. Service fixtures live in tests/fixtures/ (one module per real service)."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.pcsc",  # pcscd + vpcd with the virtual chip
    "tests.fixtures.broker",  # real mosquitto on loopback (plain, TLS, mTLS, ACL)
]
