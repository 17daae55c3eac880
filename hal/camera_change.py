"""Skip frames that have not changed, so an idle box does not decode the same picture all day.

``ChangeDetector`` compares a strided thumbnail (every ``step``-th pixel, about 80x60 for a
640x480 preview: microseconds) with the last frame that was let through; the mean absolute
difference must exceed ``threshold`` grey levels. ``SkipUnchanged`` wraps any ``Camera`` and
returns only changed frames, plus one frame every ``refresh`` seconds even when nothing
changed (a card lying still may decode once the exposure settles).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from idstation.hal.ports import Camera, Frame

__all__ = ["ChangeDetector", "SkipUnchanged"]


class ChangeDetector:
    """Decides whether a grayscale frame differs from the last accepted one."""

    def __init__(self, threshold: float = 3.0, step: int = 8) -> None:
        if step < 1:
            raise ValueError("step must be at least 1")
        self.threshold = threshold
        self.step = step
        self._last: np.ndarray | None = None

    def changed(self, gray: np.ndarray) -> bool:
        """True (and remember this frame) when it differs from the last accepted frame."""
        thumb = gray[:: self.step, :: self.step].astype(np.int16)
        last = self._last
        if last is None or last.shape != thumb.shape or float(np.abs(thumb - last).mean()) > self.threshold:
            self._last = thumb
            return True
        return False

    def reset(self) -> None:
        self._last = None


class SkipUnchanged:
    """A ``Camera`` that passes on only frames that changed (or one per ``refresh`` seconds)."""

    def __init__(
        self,
        camera: Camera,
        detector: ChangeDetector | None = None,
        refresh: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera = camera
        self.detector = detector or ChangeDetector()
        self.refresh = refresh
        self.skipped = 0
        self._clock = clock
        self._last_pass = -float("inf")

    def start(self) -> None:
        self.detector.reset()
        self.camera.start()

    def stop(self) -> None:
        self.camera.stop()

    def read(self, timeout: float) -> Frame | None:
        """The next changed frame within ``timeout`` seconds, or None."""
        deadline = self._clock() + timeout
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            frame = self.camera.read(remaining)
            if frame is None:
                return None
            now = self._clock()
            if self.detector.changed(frame.gray) or now - self._last_pass >= self.refresh:
                self._last_pass = now
                return frame
            self.skipped += 1
