"""Hardware for the self-test, from ``--reader`` and ``--camera`` specs.

Sources in the one device-source grammar (``hal.sources``): readers ``sim`` (in-process reader
with the built-in test card on it), ``pcsc``, ``pcsc:NAME``, ``none`` (skip); cameras ``sim``
(simulated camera showing the test card's QR), ``replay:PATH``, ``picamera2[:PROFILE]``,
``v4l2[:N]``, ``none`` (skip).
Everything hardware-specific is imported only when chosen. The simulated parts (the virtual
citizen card, the simulated camera) come from the simulator, which sits above provisioning: the
command line hands them in as a ``Simulator``; without one, ``sim`` readers hold a minimal card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from idstation.hal.errors import IdstationError
from idstation.hal.sources import SourceError, open_camera, open_reader, parse_camera, parse_reader

if TYPE_CHECKING:
    from idstation.hal.ports import Camera, CardReader

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

    def camera(self, payload: Callable[[], str | None], fps: float) -> Camera: ...


@dataclass(frozen=True, slots=True)
class ReaderFactory:
    """Opens the reader a ``--reader`` spec names, when the check runs.

    ``wanted`` is the PC/SC name filter of ``pcsc:NAME``: the self-test names it when no such reader
    is present.
    """

    make: Callable[[], CardReader]
    wanted: str | None = None

    def __call__(self) -> CardReader:
        return self.make()


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


def reader_factory(spec: str, simulator: Simulator | None = None) -> ReaderFactory | None:
    """A factory of the reader ``spec`` names (``hal.sources`` grammar), None for ``none``."""
    source = parse_reader(spec)
    if source.kind == "none":
        return None
    if source.kind == "sim":

        def make_sim() -> CardReader:
            from idstation.hal.reader_sim import SimReader

            reader = SimReader("Simulated Reader 00")
            reader.insert(test_card(simulator).handler)
            return reader

        return ReaderFactory(make_sim)

    def make_pcsc() -> CardReader:
        reader = open_reader(source)
        if reader is None:  # only "none" opens nothing, and it was answered above
            raise SourceError(f"--reader {spec!r} names no reader")
        return reader

    return ReaderFactory(make_pcsc, wanted=source.arg or None)


def camera_factory(spec: str, simulator: Simulator | None = None) -> tuple[Callable[[], Camera] | None, str | None]:
    """(factory, QR text the test card must decode to, or None for any QR); ``hal.sources`` grammar."""
    source = parse_camera(spec)
    if source.kind == "none":
        return None, None
    if source.kind == "sim":
        if simulator is None:
            raise SourceError("--camera sim needs the simulator (idstation selftest provides it)")
        sim, qr = simulator, test_card(simulator).qr
        return (lambda: sim.camera(lambda: qr, 20.0)), qr

    def make_camera() -> Camera:
        camera = open_camera(source)
        if camera is None:  # only "none" opens nothing, and it was answered above
            raise SourceError(f"--camera {spec!r} names no camera")
        return camera

    return make_camera, None
