"""The simulator's parts for ``idstation selftest --reader sim --camera sim`` (provisioning's
``selftest_devices.Simulator``): the first virtual citizen card and the simulated camera."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

__all__ = ["SelftestSimulator"]


class SelftestSimulator:
    """Hands the self-test a virtual citizen card (APDU handler + QR text) and a simulated camera."""

    @cached_property
    def _card(self) -> Any:
        from idstation.agent.emrtd.virtual_card.chip import VirtualChip
        from idstation.agent.sim.simulation import build_cards
        from idstation.provisioning.selftest_devices import TestCard

        card = build_cards(None, [], 1)[0]
        return TestCard(VirtualChip(card.image), card.qr) if card.qr else None

    def test_card(self) -> Any:
        return self._card

    def camera(self, payload: Callable[[], str | None], fps: float) -> Any:
        from idstation.agent.sim.camera import SimCamera

        return SimCamera(payload, fps=fps)
