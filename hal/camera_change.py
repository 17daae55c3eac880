"""Skip frames that have not changed, so an idle box does not decode the same picture all day.

``ChangeDetector`` compares a strided thumbnail (every ``step``-th pixel, about 80x60 for a
640x480 preview: microseconds) with the last frame that was let through; the mean absolute
difference must exceed ``threshold`` grey levels. ``SkipUnchanged`` wraps any ``Camera`` and
returns only changed frames, plus one frame every ``refresh`` seconds even when nothing
changed (a card lying still may decode once the exposure settles). The real cameras (picamera2,
V4L2) gate their own frames the same way (``unchanged_refresh``), so the ``Camera.read``
contract "the next new frame" holds and an idle box decodes a couple of frames a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from idstation.hal.ports import Camera, Frame

__all__ = ["ChangeDetector", "ChangeGate", "SkipUnchanged", "read_changed"]


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


class ChangeGate:
    """Admits changed frames, plus one frame every ``refresh`` seconds when nothing changes."""

    def __init__(
        self,
        detector: ChangeDetector | None = None,
        refresh: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.detector = detector or ChangeDetector()
        self.refresh = refresh
        self.skipped = 0
        self._clock = clock
        self._last_pass = -float("inf")

    def admit(self, gray: np.ndarray) -> bool:
        now = self._clock()
        if self.detector.changed(gray) or now - self._last_pass >= self.refresh:
            self._last_pass = now
            return True
        self.skipped += 1
        return False

    def reset(self) -> None:
        self.detector.reset()
        self._last_pass = -float("inf")


def read_changed(
    capture: Callable[[float], Frame | None],
    gate: ChangeGate | None,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> Frame | None:
    """The next frame ``capture`` returns that ``gate`` admits, within ``timeout`` seconds."""
    deadline = clock() + timeout
    while True:
        frame = capture(max(0.0, deadline - clock()))
        if frame is None or gate is None or gate.admit(frame.gray):
            return frame
        if clock() >= deadline:
            return None


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
        self.gate = ChangeGate(detector, refresh=refresh, clock=clock)
        self._clock = clock

    @property
    def skipped(self) -> int:
        return self.gate.skipped

    def start(self) -> None:
        self.gate.reset()
        self.camera.start()

    def stop(self) -> None:
        self.camera.stop()

    def read(self, timeout: float) -> Frame | None:
        """The next changed frame within ``timeout`` seconds, or None."""
        return read_changed(self.camera.read, self.gate, timeout, self._clock)
