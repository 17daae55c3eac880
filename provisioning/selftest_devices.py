"""Hardware for the self-test, from ``--reader`` and ``--camera`` specs.

Readers: ``sim`` (in-process reader with the built-in test card on it), ``pcsc`` (first PC/SC
reader), ``pcsc:NAME`` (reader whose name contains NAME), ``none`` (skip).
Cameras: ``sim`` (simulated camera showing the test card's QR), ``replay:PATH`` (recorded images or
video), ``picamera2``, ``v4l2`` / ``v4l2:N`` (/dev/videoN), ``none`` (skip).
Everything hardware-specific is imported only when chosen. The simulated parts (the virtual
citizen card, the simulated camera) come from the simulator, which sits above provisioning: the
command line hands them in as a ``Simulator``; without one, ``sim`` readers hold a minimal card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from idstation.hal.errors import IdstationError
from idstation.provisioning.errors import ProvisioningError


class SpecError(ProvisioningError, ValueError):
    """A --reader or --camera value is not understood."""


SELFTEST_QR = "IDSTATION-SELFTEST-CARD-1"


@dataclass(frozen=True, slots=True)
class TestCard:
    """An APDU handler answering like a citizen card, and the QR text printed on it."""

    __test__ = False  # not a pytest class

    handler: Callable[[bytes], bytes]
    qr: str


class Simulator(Protocol):
    """The simulator's parts the self-test uses (``idstation.agent.sim.selftest.SelftestSimulator``)."""

    def test_card(self) -> TestCard | None: ...

    def camera(self, payload: Callable[[], str | None], fps: float) -> Any: ...


def _minimal_chip(apdu: bytes) -> bytes:
    """Answers SELECT of the eMRTD application, nothing else (fallback test card)."""
    return b"\x90\x00" if apdu[:4] == bytes.fromhex("00A4040C") else b"\x6d\x00"


def test_card(simulator: Simulator | None = None) -> TestCard:
    """The simulator's first virtual citizen card, or a minimal card without the simulator."""
    card = None
    if simulator is not None:
        try:
            card = simulator.test_card()
        except IdstationError:
            card = None
    return card or TestCard(_minimal_chip, SELFTEST_QR)


test_card.__test__ = False  # type: ignore[attr-defined]


def reader_factory(spec: str, simulator: Simulator | None = None) -> Callable[[], Any] | None:
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return None
    if kind == "sim":

        def make_sim() -> Any:
            from idstation.hal.reader_sim import SimReader

            reader = SimReader("Simulated Reader 00")
            reader.insert(test_card(simulator).handler)
            return reader

        return make_sim
    if kind == "pcsc":

        def make_pcsc() -> Any:
            from idstation.hal.reader_pcsc import PcscReader

            return PcscReader(arg or None)

        make_pcsc.wanted = arg or None  # type: ignore[attr-defined]  # selftest names a missing reader
        return make_pcsc
    raise SpecError(f"--reader {spec!r}: use sim, pcsc, pcsc:NAME or none")


def camera_factory(spec: str, simulator: Simulator | None = None) -> tuple[Callable[[], Any] | None, str | None]:
    """(factory, QR text the test card must decode to, or None for any QR)."""
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return None, None
    if kind == "sim":
        if simulator is None:
            raise SpecError("--camera sim needs the simulator (idstation selftest provides it)")
        qr = test_card(simulator).qr

        def make_sim() -> Any:
            return simulator.camera(lambda: qr, 20.0)

        return make_sim, qr
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
