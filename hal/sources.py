"""One grammar for device sources: the configuration, the command line and the self-test all say
which reader and which camera with it (``parse_reader``, ``parse_camera``) and open them here.

Readers:  ``pcsc`` (first PC/SC reader holding a card) | ``pcsc:NAME`` (name contains NAME) |
          ``sim`` | ``sim:PROFILE`` (in-process simulated reader) | ``none``
Cameras:  ``picamera2`` | ``picamera2:PROFILE`` | ``v4l2`` | ``v4l2:N`` | ``v4l2:/dev/PATH`` |
          ``replay:PATH`` (images, a folder or a video) | ``sim`` | ``none``

Hardware libraries are imported only by the implementation chosen (picamera2 on the Pi, OpenCV for
USB cameras, pyscard for PC/SC). The simulated devices belong to the simulator, which sits above
``hal``: whoever may use it (the wiring, the demo, the command line) hands a factory in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from idstation.hal.errors import DeviceError
from idstation.hal.ports import Camera, CardReader

__all__ = [
    "CAMERAS",
    "READERS",
    "SOURCES",
    "SimCameraFactory",
    "Source",
    "SourceError",
    "open_camera",
    "open_reader",
    "parse_camera",
    "parse_reader",
]

READERS = "pcsc | pcsc:NAME | sim | sim:PROFILE | none"
CAMERAS = "picamera2[:PROFILE] | v4l2[:N] | replay:PATH | sim | none"
SOURCES = CAMERAS  # the camera grammar (``camera-test --source``)

# (payload, fps) -> the simulated camera (idstation.agent.sim.camera.make_sim_camera)
SimCameraFactory = Callable[[Callable[[], str | None], float], Camera]


class SourceError(DeviceError, ValueError):
    """A reader or camera source is not in the grammar (a configuration or command-line mistake)."""


@dataclass(frozen=True, slots=True)
class Source:
    """A parsed source: ``kind`` and its argument (``""`` when none)."""

    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


def parse_reader(spec: str | Source) -> Source:
    if isinstance(spec, Source):
        return spec
    kind, _, arg = spec.partition(":")
    if kind in ("pcsc", "sim") or (kind == "none" and not arg):
        return Source(kind, arg)
    raise SourceError(f"unknown reader source {spec!r}; expected {READERS}")


def parse_camera(spec: str | Source) -> Source:
    if isinstance(spec, Source):
        return spec
    kind, _, arg = spec.partition(":")
    if kind in ("sim", "none") and not arg:
        return Source(kind)
    if kind == "picamera2":
        return Source(kind, arg)
    if kind == "replay":
        if not arg:
            raise SourceError("camera source replay needs a path: replay:PATH")
        return Source(kind, arg)
    if kind == "v4l2":
        number = arg.removeprefix("/dev/video")
        if number.isdigit() or not arg:
            return Source(kind, number)
        if arg.startswith("/dev/"):
            return Source(kind, arg)  # a stable name such as /dev/v4l/by-id/...
        raise SourceError("camera source v4l2 takes a device number or path: v4l2:N or v4l2:/dev/...")
    raise SourceError(f"unknown camera source {spec!r}; expected {CAMERAS}")


def open_camera(
    spec: str | Source,
    payload: Callable[[], str | None] | None = None,
    fps: float = 10.0,
    *,
    size: tuple[int, int] | None = None,
    loop: bool = False,
    simulated: SimCameraFactory | None = None,
) -> Camera | None:
    """A ``Camera`` for ``spec`` (not started), None for ``none``. ``payload`` feeds the simulated card."""
    source = parse_camera(spec)
    if source.kind == "none":
        return None
    if source.kind == "sim":
        if simulated is None:
            raise SourceError("camera source sim needs the simulator (demo and tests only)")
        return simulated(payload or (lambda: None), fps)
    if source.kind == "replay":
        from idstation.hal.camera_replay import ReplayCamera

        return ReplayCamera(Path(source.arg), fps=fps if loop else 0.0, loop=loop)
    if source.kind == "v4l2":
        from idstation.hal.camera_v4l2 import V4l2Camera

        device: int | str = int(source.arg) if source.arg.isdigit() else (source.arg or 0)
        return V4l2Camera(device, size) if size else V4l2Camera(index=device, fps=fps)
    from idstation.hal.camera_picamera2 import Picamera2Camera

    if source.arg:
        return Picamera2Camera.from_profile(source.arg, size)
    return Picamera2Camera(size, fps=fps) if size else Picamera2Camera(fps=fps)


def open_reader(
    spec: str | Source,
    *,
    extended_length: bool = True,
    max_response: int = 65536,
    simulated: Callable[[Source], CardReader] | None = None,
) -> CardReader | None:
    """A ``CardReader`` for ``spec``, None for ``none``; ``sim`` needs the simulator's factory."""
    source = parse_reader(spec)
    if source.kind == "none":
        return None
    if source.kind == "sim":
        if simulated is None:
            raise SourceError("reader source sim needs the simulator (demo, tests and the self-test)")
        return simulated(source)
    from idstation.hal.reader_pcsc import PcscReader

    return PcscReader(source.arg or None, extended_length=extended_length, max_response=max_response)
