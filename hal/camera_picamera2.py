"""The Raspberry Pi camera through picamera2 (libcamera): lores preview plus full-resolution main.

Both streams are YUV420. Each request gives the lores Y plane as ``Frame.gray`` (the decoder's
cheap first look) and the main Y plane as ``Frame.full`` (the region of a hard code is decoded
there). The Y plane is a view into the array picamera2 returns (rows cropped to the image
width when the buffer is padded): no further copy.

picamera2 exists only on the Pi and is imported in ``start()``. Focus and exposure are fixed
when given (a card lying still on the reader at a known distance; a short exposure against
motion blur).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from idstation.hal.camera_change import ChangeGate
from idstation.hal.errors import CameraError
from idstation.hal.ports import Frame

__all__ = ["Picamera2Camera", "load_camera_profile", "y_plane"]


def y_plane(yuv420: np.ndarray, width: int, height: int) -> np.ndarray:
    """The luminance plane of a YUV420 array (shape ``(height * 3 // 2, stride)``), as a view."""
    if yuv420.ndim != 2 or yuv420.shape[0] < height or yuv420.shape[1] < width:
        raise CameraError("camera returned a buffer of unexpected shape")
    return yuv420[:height, :width]


def load_camera_profile(profile: str) -> dict[str, Any]:
    """The TOML table of a camera profile, by name (shipped in firmware_cfg/cameras) or path."""
    path = Path(profile)
    try:
        if path.suffix == ".toml" or path.exists():
            text = path.read_text(encoding="utf-8")
        else:
            from importlib.resources import files

            text = files("idstation.firmware_cfg").joinpath("cameras", f"{profile}.toml").read_text(encoding="utf-8")
        return tomllib.loads(text)
    except (OSError, ModuleNotFoundError) as exc:
        raise CameraError(f"camera profile {profile!r} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CameraError(f"camera profile {profile!r} is not valid TOML: {exc}") from None


class Picamera2Camera:
    """``Camera`` port implementation for the Pi camera module."""

    def __init__(
        self,
        main_size: tuple[int, int] = (1280, 960),
        *,
        lores_size: tuple[int, int] = (640, 480),
        fps: float = 15.0,
        lens_position: float | None = None,
        exposure_us: int | None = None,
        camera_num: int = 0,
        controls: Mapping[str, object] | None = None,
        unchanged_refresh: float | None = 0.5,
    ) -> None:
        self.main_size = main_size
        self.lores_size = lores_size
        self.fps = fps
        self.lens_position = lens_position
        self.exposure_us = exposure_us
        self.camera_num = camera_num
        self.controls = dict(controls or {})
        self._cam: Any = None
        self._seq = 0
        # unchanged frames are skipped, one still passes every ``unchanged_refresh`` s (None: all pass)
        self.gate = ChangeGate(refresh=unchanged_refresh) if unchanged_refresh is not None else None

    @classmethod
    def from_profile(cls, profile: str, resolution: tuple[int, int] | None = None) -> Picamera2Camera:
        """A camera set up by a profile: ``firmware_cfg/cameras/<profile>.toml`` or a TOML file path.

        The profile's ``main_size``, ``lores_size``, ``frame_rate`` and ``[controls]`` (passed to
        libcamera as they are) are used; ``resolution`` is the main stream size when the profile
        names none. The lores stream defaults to half the main stream.
        """
        data = load_camera_profile(profile)
        main = tuple(data.get("main_size") or resolution or (1280, 960))
        lores = tuple(data.get("lores_size") or (main[0] // 2, main[1] // 2))
        if len(main) != 2 or len(lores) != 2:
            raise CameraError(f"camera profile {profile}: main_size and lores_size are [width, height]")
        controls = data.get("controls") or {}
        if not isinstance(controls, dict):
            raise CameraError(f"camera profile {profile}: [controls] must be a table")
        return cls(
            main_size=(int(main[0]), int(main[1])),
            lores_size=(int(lores[0]), int(lores[1])),
            fps=float(data.get("frame_rate", 10)),
            controls=controls,
        )

    def start(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError("picamera2 is not installed (Raspberry Pi OS: apt install python3-picamera2)") from exc
        controls: dict[str, object] = {"FrameRate": self.fps, **self.controls}
        if self.lens_position is not None:
            controls.update({"AfMode": 0, "LensPosition": self.lens_position})
        if self.exposure_us is not None:
            controls.update({"ExposureTime": self.exposure_us})
        try:
            cam = Picamera2(self.camera_num)
            config = cam.create_video_configuration(
                main={"size": self.main_size, "format": "YUV420"},
                lores={"size": self.lores_size, "format": "YUV420"},
                controls=controls,
                buffer_count=4,
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:  # libcamera raises RuntimeError, IndexError, OSError ...
            raise CameraError(f"cannot start the Pi camera: {type(exc).__name__}") from exc
        self._cam = cam
        if self.gate is not None:
            self.gate.reset()

    def stop(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()

    def read(self, timeout: float) -> Frame | None:
        """The next new frame (unchanged ones skipped), or None after ``timeout`` seconds.

        picamera2 delivers a frame every 1/fps seconds and ``capture_request`` blocks for the next
        one (its timeout argument differs between versions), so a read may end up to one frame
        interval after ``timeout``.
        """
        if self._cam is None:
            raise CameraError("Pi camera is not started")
        deadline = time.monotonic() + timeout
        while True:
            frame = self._capture()
            if frame is not None or time.monotonic() >= deadline:
                return frame

    def _capture(self) -> Frame | None:
        """One request: None when the change gate skips it (the main stream is then not copied)."""
        try:
            request = self._cam.capture_request()
        except Exception as exc:  # libcamera errors surface as RuntimeError and others
            raise CameraError(f"Pi camera stopped delivering frames: {type(exc).__name__}") from exc
        try:
            gray = y_plane(request.make_array("lores"), *self.lores_size)
            if self.gate is not None and not self.gate.admit(gray):
                return None
            full = y_plane(request.make_array("main"), *self.main_size)
            metadata = request.get_metadata()
        finally:
            request.release()
        self._seq += 1
        meta = {k: metadata[k] for k in ("ExposureTime", "AnalogueGain", "LensPosition") if k in metadata}
        return Frame(gray=gray, timestamp=time.monotonic(), seq=self._seq, full=full, meta=meta)
