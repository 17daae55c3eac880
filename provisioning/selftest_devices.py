"""Hardware for the self-test, from ``--reader`` and ``--camera`` specs.

Readers: ``sim`` (in-process reader with the built-in test card on it), ``pcsc`` (first PC/SC
reader), ``pcsc:NAME`` (reader whose name contains NAME), ``none`` (skip).
Cameras: ``sim`` (simulated camera showing the test card's QR), ``replay:PATH`` (recorded images or
video), ``picamera2``, ``v4l2`` / ``v4l2:N`` (/dev/videoN), ``none`` (skip).
Everything hardware-specific is imported only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from idstation.hal.errors import IdstationError
from idstation.provisioning.errors import ProvisioningError


class SpecError(ProvisioningError, ValueError):
    """A --reader or --camera value is not understood."""


SELFTEST_QR = "IDSTATION-SELFTEST-CARD-1"


@dataclass(frozen=True, slots=True)
class _TestCard:
    handler: Callable[[bytes], bytes]
    qr: str


def _minimal_chip(apdu: bytes) -> bytes:
    """Answers SELECT of the eMRTD application, nothing else (fallback test card)."""
    return b"\x90\x00" if apdu[:4] == bytes.fromhex("00A4040C") else b"\x6d\x00"


@cache
def _test_card() -> _TestCard:
    """The simulator's first virtual citizen card, or a minimal card when the simulator is absent."""
    try:
        from idstation.agent.emrtd.virtual_card.chip import VirtualChip
        from idstation.agent.sim.simulation import build_cards

        card = build_cards(None, [], 1)[0]
        if card.qr:
            return _TestCard(VirtualChip(card.image), card.qr)
    except (ImportError, IdstationError):
        pass
    return _TestCard(_minimal_chip, SELFTEST_QR)


def reader_factory(spec: str) -> Callable[[], Any] | None:
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return None
    if kind == "sim":

        def make_sim() -> Any:
            from idstation.hal.reader_sim import SimReader

            reader = SimReader("Simulated Reader 00")
            reader.insert(_test_card().handler)
            return reader

        return make_sim
    if kind == "pcsc":

        def make_pcsc() -> Any:
            from idstation.hal.reader_pcsc import PcscReader

            return PcscReader(arg or None)

        make_pcsc.wanted = arg or None  # type: ignore[attr-defined]  # selftest names a missing reader
        return make_pcsc
    raise SpecError(f"--reader {spec!r}: use sim, pcsc, pcsc:NAME or none")


def camera_factory(spec: str) -> tuple[Callable[[], Any] | None, str | None]:
    """(factory, QR text the test card must decode to, or None for any QR)."""
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return None, None
    if kind == "sim":

        def make_sim() -> Any:
            from idstation.agent.sim.camera import SimCamera

            qr = _test_card().qr
            return SimCamera(lambda: qr, fps=20.0)

        return make_sim, _test_card().qr
    if kind == "replay" and arg:

        def make_replay() -> Any:
            from idstation.hal.camera_replay import ReplayCamera

            return ReplayCamera(arg)

        return make_replay, None
    if kind == "picamera2":

        def make_picamera2() -> Any:
            from idstation.hal.camera_picamera2 import Picamera2Camera

            return Picamera2Camera()

        return make_picamera2, None
    if kind == "v4l2":
        try:
            index = int(arg.removeprefix("/dev/video")) if arg else 0
        except ValueError:
            raise SpecError(f"--camera {spec!r}: use v4l2 or v4l2:N") from None

        def make_v4l2() -> Any:
            from idstation.hal.camera_v4l2 import V4l2Camera

            return V4l2Camera(index)

        return make_v4l2, None
    raise SpecError(f"--camera {spec!r}: use sim, replay:PATH, picamera2, v4l2[:N] or none")
