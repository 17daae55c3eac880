"""A simulated camera looking at the reader: shows a card whose QR holds the current payload.

``payload`` is a callable returning the QR text of the card now on the reader, or None for an
empty reader (the agent's simulator passes the virtual card's QR text). Frames come at ``fps``
on an injectable clock; each carries a ``preview``-sized plane (``gray``) and the full-size
plane (``full``), like picamera2's lores and main streams. A scene is rendered once per
payload (about 0.1-0.2 s) and then repeated, with optional sensor noise per frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from idstation.agent.sim.scene import SceneParams, render_scene
from idstation.hal.errors import CameraError
from idstation.hal.planes import downscale2
from idstation.hal.ports import Frame

__all__ = ["SimCamera", "make_sim_camera"]


class SimCamera:
    """``Camera`` port implementation for tests and the demo."""

    def __init__(
        self,
        payload: Callable[[], str | None],
        *,
        fps: float = 10.0,
        params: SceneParams | None = None,
        noise: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        seed: int = 7,
    ) -> None:
        self._payload = payload
        self._interval = 1.0 / fps if fps > 0 else 0.0
        self._params = params or SceneParams(width=1280, height=960, ppm=5.0, tilt=12, roll=8, seed=seed)
        self._noise = noise
        self._clock = clock
        self._sleep = sleep
        self._rng = np.random.default_rng(seed)
        self._cache: dict[str | None, np.ndarray] = {}
        self._running = False
        self._seq = 0
        self._next = 0.0

    def start(self) -> None:
        self._running = True
        self._next = self._clock()

    def stop(self) -> None:
        self._running = False

    def read(self, timeout: float) -> Frame | None:
        if not self._running:
            raise CameraError("simulated camera is not started")
        now = self._clock()
        wait = self._next - now
        if wait > timeout:
            self._sleep(max(0.0, timeout))
            return None
        if wait > 0:
            self._sleep(wait)
        self._next = max(self._next, now) + self._interval
        full = self._scene(self._payload())
        if self._noise > 0:
            noisy = full + self._rng.normal(0, self._noise, full.shape)
            full = np.clip(noisy, 0, 255).astype(np.uint8)
        self._seq += 1
        return Frame(gray=downscale2(full), timestamp=self._clock(), seq=self._seq, full=full)

    def _scene(self, text: str | None) -> np.ndarray:
        image = self._cache.get(text)
        if image is None:
            if len(self._cache) > 8:
                self._cache.clear()
            seed = self._params.seed + len(text or "")
            image = render_scene(text, replace(self._params, seed=seed, jpeg_quality=None))
            self._cache[text] = image
        return image


def make_sim_camera(payload: Callable[[], str | None], fps: float) -> SimCamera:
    """The ``simulated`` factory ``hal.sources.open_camera`` takes for the source ``sim``."""
    return SimCamera(payload, fps=fps)
