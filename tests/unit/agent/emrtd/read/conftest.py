"""Virtual cards on the in-process simulated reader, built from the built-in citizen profiles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from idstation.hal.reader_sim import SimReader


@pytest.fixture(scope="session")
def trust() -> Any:
    from idstation.agent.sim.profiles import test_trust

    return test_trust()


@pytest.fixture(scope="session")
def profiles() -> dict[str, Any]:
    from idstation.agent.sim.profiles import builtin_profiles

    return builtin_profiles()


@pytest.fixture
def card_on_reader() -> Callable[..., Any]:
    """``card_on_reader(image, extended_length=True)`` -> a connection to that chip on a SimReader."""
    from idstation.agent.emrtd.virtual_card.chip import VirtualChip

    def place(image: Any, extended_length: bool = True) -> Any:
        reader = SimReader()
        reader.insert(VirtualChip(image), atr=image.atr, extended_length=extended_length,
                      max_response=65536 if extended_length else 256)  # fmt: skip
        conn = reader.wait_for_card(1.0)
        assert conn is not None
        return conn

    return place
