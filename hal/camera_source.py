"""Open a camera from a source string: ``sim``, ``replay:PATH``, ``v4l2[:N]``, ``picamera2[:PROFILE]``.

Used by ``idstation camera-test`` and the daemon's wiring. Hardware libraries are imported only
by the implementation that is chosen (picamera2 on the Pi, OpenCV for USB cameras). It lives in
``hal`` so that the pure QR core never depends on camera drivers.
"""

from __future__ import annotations

from collections.abc import Callable

from idstation.hal.errors import CameraError
from idstation.hal.ports import Camera

__all__ = ["SOURCES", "CameraSourceError", "SimFactory", "open_camera"]

SOURCES = "sim | replay:PATH | v4l2[:N] | picamera2[:PROFILE]"


class CameraSourceError(CameraError, ValueError):
    """The camera source string is not one of ``SOURCES`` (a configuration mistake)."""


# (payload, fps) -> the simulated camera; the simulator (idstation.agent.sim) is above hal, so
# whoever may use it (the wiring, the demo, the command line) hands it in.
SimFactory = Callable[[Callable[[], str | None], float], Camera]


def open_camera(
    spec: str,
    payload: Callable[[], str | None] | None = None,
    fps: float = 10.0,
    *,
    simulated: SimFactory | None = None,
) -> Camera:
    """A ``Camera`` for ``spec`` (not started). ``payload`` feeds the simulated camera's card."""
    kind, _, arg = spec.partition(":")
    if kind == "sim":
        if simulated is None:
            raise CameraSourceError("camera source sim needs the simulator (demo and tests only)")
        return simulated(payload or (lambda: None), fps)
    if kind == "replay":
        if not arg:
            raise CameraSourceError("camera source replay needs a path: replay:PATH")
        from idstation.hal.camera_replay import ReplayCamera

        return ReplayCamera(arg)
    if kind == "v4l2":
        from idstation.hal.camera_v4l2 import V4l2Camera

        if arg and not arg.isdigit():
            raise CameraSourceError("camera source v4l2 takes a device number: v4l2:N")
        return V4l2Camera(index=int(arg or 0), fps=fps)
    if kind == "picamera2":
        from idstation.hal.camera_picamera2 import Picamera2Camera

        return Picamera2Camera.from_profile(arg) if arg else Picamera2Camera(fps=fps)
    raise CameraSourceError(f"unknown camera source {spec!r}; expected {SOURCES}")
