"""A USB camera through V4L2, with OpenCV (the optional ``vision`` extra, imported in ``start``).

Frames are converted to grayscale; the captured frame is ``Frame.full`` and a 2x2-averaged
preview is ``Frame.gray`` when the capture is larger than ``preview_long_side``.
"""

from __future__ import annotations

import time
from typing import Any

from idstation.hal.camera_change import ChangeGate, read_changed
from idstation.hal.errors import CameraError
from idstation.hal.planes import downscale2
from idstation.hal.ports import Frame

__all__ = ["V4l2Camera"]


class V4l2Camera:
    """``Camera`` port implementation for /dev/videoN."""

    def __init__(
        self,
        index: int | str = 0,
        size: tuple[int, int] = (1280, 960),
        fps: float = 15.0,
        preview_long_side: int = 800,
        unchanged_refresh: float | None = 0.5,
    ) -> None:
        # a device number, "N", or a path such as /dev/video0
        self.index: int | str = int(index) if isinstance(index, str) and index.isdigit() else index
        self.size = size
        self.fps = fps
        self.preview_long_side = preview_long_side
        self._cap: Any = None
        self._cv2: Any = None
        self._seq = 0
        # unchanged frames are skipped, one still passes every ``unchanged_refresh`` s (None: all pass)
        self.gate = ChangeGate(refresh=unchanged_refresh) if unchanged_refresh is not None else None

    def start(self) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise CameraError("USB cameras need OpenCV (pip install idstation[vision])") from exc
        cap = cv2.VideoCapture(self.index, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open V4L2 camera {self._name}")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
        self._cap, self._cv2 = cap, cv2
        if self.gate is not None:
            self.gate.reset()

    @property
    def _name(self) -> str:
        return f"/dev/video{self.index}" if isinstance(self.index, int) else str(self.index)

    def stop(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def read(self, timeout: float) -> Frame | None:
        """The next new frame (unchanged ones skipped), or None after ``timeout`` seconds."""
        if self._cap is None:
            raise CameraError("V4L2 camera is not started")
        return read_changed(self._capture, self.gate, timeout)

    def _capture(self, timeout: float) -> Frame | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"V4L2 camera {self._name} stopped delivering frames")
        gray = image if image.ndim == 2 else self._cv2.cvtColor(image, self._cv2.COLOR_BGR2GRAY)
        self._seq += 1
        if max(gray.shape) > self.preview_long_side:
            return Frame(gray=downscale2(gray), timestamp=time.monotonic(), seq=self._seq, full=gray)
        return Frame(gray=gray, timestamp=time.monotonic(), seq=self._seq)
