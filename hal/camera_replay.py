"""Replay recorded frames: one image file, a folder of images (sorted by name), or a video file.

Images are read with pillow through ``hal.image_file.load_gray`` (memory bounded from the
header: oversized images are refused or reduced), videos with OpenCV (both from the optional ``vision`` extra, and
imported only when used). Frames are converted to grayscale; a frame whose long side exceeds
``preview_long_side`` is also offered as ``full`` with a 2x2-averaged preview as ``gray``,
like the Pi camera's main and lores streams. At the end of the recording ``read`` returns None,
or starts again when ``loop`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import structlog
from idstation.hal.errors import CameraError
from idstation.hal.image_file import load_gray  # bounded by the header: a pixel bomb is refused
from idstation.hal.planes import downscale2
from idstation.hal.ports import Frame

log = structlog.get_logger(__name__)

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "ReplayCamera", "load_gray"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".mjpeg", ".mjpg", ".h264", ".webm"})


class ReplayCamera:
    """``Camera`` port over recorded images or a video."""

    def __init__(
        self,
        path: str | Path,
        fps: float = 0.0,
        loop: bool = False,
        preview_long_side: int = 800,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.loop = loop
        self.preview_long_side = preview_long_side
        self._interval = 1.0 / fps if fps > 0 else 0.0
        self._sleep = sleep
        self._frames: Iterator[np.ndarray] | None = None
        self._seq = 0

    def start(self) -> None:
        if not self.path.exists():
            raise CameraError(f"replay source does not exist: {self.path}")
        self._frames = self._iterate()

    def stop(self) -> None:
        self._frames = None

    def read(self, timeout: float) -> Frame | None:
        if self._frames is None:
            raise CameraError("replay camera is not started")
        if self._interval:
            self._sleep(min(self._interval, max(0.0, timeout)))
        plane = next(self._frames, None)
        if plane is None:
            return None
        self._seq += 1
        if max(plane.shape) > self.preview_long_side:
            return Frame(gray=downscale2(plane), timestamp=time.monotonic(), seq=self._seq, full=plane)
        return Frame(gray=plane, timestamp=time.monotonic(), seq=self._seq)

    def _iterate(self) -> Iterator[np.ndarray]:
        while True:
            produced = False
            for plane in self._one_pass():
                produced = True
                yield plane
            if not self.loop or not produced:
                return

    def _one_pass(self) -> Iterator[np.ndarray]:
        if self.path.is_dir():
            for item in sorted(self.path.iterdir()):
                if item.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    yield load_gray(item)
                except CameraError as exc:
                    log.warning("replay_image_skipped", reason=str(exc))
        elif self.path.suffix.lower() in VIDEO_SUFFIXES:
            yield from _video_frames(self.path)
        else:
            yield load_gray(self.path)


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the vision extra
        raise CameraError("replaying video needs OpenCV (pip install idstation[vision])") from exc
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise CameraError(f"cannot open video {path.name}")
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    finally:
        capture.release()
