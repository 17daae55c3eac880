"""Replay sources, and the real-device cameras' behaviour off the Pi."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from idstation.agent.sim.camera import SimCamera, make_sim_camera
from idstation.hal.camera_picamera2 import Picamera2Camera, y_plane
from idstation.hal.camera_replay import ReplayCamera, load_gray
from idstation.hal.camera_v4l2 import V4l2Camera
from idstation.hal.errors import CameraError
from idstation.hal.sources import SourceError, open_camera, parse_camera, parse_reader


def _write(path: Path, value: int, size: tuple[int, int] = (64, 48)) -> None:
    from PIL import Image

    Image.fromarray(np.full((size[1], size[0]), value, np.uint8)).save(path)


def _drain(camera: ReplayCamera, limit: int = 20) -> list[int]:
    values = []
    for _ in range(limit):
        frame = camera.read(timeout=0.1)
        if frame is None:
            break
        values.append(int(frame.gray[0, 0]))
    return values


def test_a_folder_replays_its_images_in_name_order_then_ends(tmp_path: Path) -> None:
    for name, value in (("b.png", 20), ("a.png", 10), ("c.jpg", 30)):
        _write(tmp_path / name, value)
    (tmp_path / "notes.txt").write_text("not an image")
    camera = ReplayCamera(tmp_path)
    camera.start()
    values = _drain(camera)
    assert len(values) == 3
    assert values[:2] == [10, 20]


def test_a_looping_replay_starts_again(tmp_path: Path) -> None:
    _write(tmp_path / "one.png", 50)
    camera = ReplayCamera(tmp_path / "one.png", loop=True)
    camera.start()
    assert _drain(camera, limit=5) == [50] * 5


def test_unreadable_images_in_a_folder_are_skipped(tmp_path: Path) -> None:
    _write(tmp_path / "a.png", 10)
    (tmp_path / "b.png").write_bytes(b"garbage")
    camera = ReplayCamera(tmp_path)
    camera.start()
    assert _drain(camera) == [10]


def test_large_frames_come_with_a_preview_and_the_full_plane(tmp_path: Path) -> None:
    _write(tmp_path / "big.png", 77, size=(1280, 960))
    camera = ReplayCamera(tmp_path / "big.png")
    camera.start()
    frame = camera.read(0.1)
    assert frame is not None
    assert frame.full is not None
    assert frame.full.shape == (960, 1280)
    assert frame.gray.shape == (480, 640)


def test_a_video_replays_as_grayscale_frames(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for value in (40, 120, 200):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    camera = ReplayCamera(path)
    camera.start()
    values = _drain(camera)
    assert len(values) == 3
    assert values[0] < values[1] < values[2]


def test_missing_sources_and_bad_files_are_camera_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError):
        ReplayCamera(tmp_path / "nothing").start()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(CameraError, match=r"bad\.png"):
        load_gray(tmp_path / "bad.png")
    with pytest.raises(CameraError):
        ReplayCamera(tmp_path).read(0.1)  # not started


def test_y_plane_is_a_view_of_the_yuv420_buffer_without_padding() -> None:
    stride, width, height = 704, 640, 480
    yuv = np.arange(height * 3 // 2 * stride, dtype=np.uint32).astype(np.uint8).reshape(height * 3 // 2, stride)
    plane = y_plane(yuv, width, height)
    assert plane.shape == (height, width)
    assert np.shares_memory(plane, yuv)
    with pytest.raises(CameraError):
        y_plane(yuv[:10], width, height)


class _FakeRequest:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.released = False
        self.made: list[str] = []

    def make_array(self, name: str) -> np.ndarray:
        self.made.append(name)
        return self.arrays[name].copy()

    def get_metadata(self) -> dict[str, object]:
        return {"ExposureTime": 4000, "Lux": 300}

    def release(self) -> None:
        self.released = True


class _FakePicamera2:
    """Stands in for the foreign picamera2 library: hands out YUV420 requests."""

    instances: ClassVar[list[_FakePicamera2]] = []

    def __init__(self, camera_num: int = 0) -> None:
        self.config: dict[str, object] = {}
        self.started = self.closed = False
        self.requests: list[_FakeRequest] = []
        self.lores_value = 100
        _FakePicamera2.instances.append(self)

    def create_video_configuration(self, **config: object) -> dict[str, object]:
        return config

    def configure(self, config: dict[str, object]) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True

    def capture_request(self, wait: float | None = None) -> _FakeRequest:
        main = np.full((960 * 3 // 2, 1280), 200, np.uint8)
        lores = np.full((480 * 3 // 2, 640), self.lores_value, np.uint8)
        request = _FakeRequest({"main": main, "lores": lores})
        self.requests.append(request)
        return request


def test_the_pi_camera_yields_lores_and_main_y_planes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=_FakePicamera2))
    camera = Picamera2Camera(lens_position=8.0, exposure_us=3000)
    camera.start()
    fake = _FakePicamera2.instances[-1]
    assert fake.config["lores"] == {"size": (640, 480), "format": "YUV420"}
    assert fake.config["controls"]["LensPosition"] == 8.0  # type: ignore[index]
    frame = camera.read(timeout=1.0)
    assert frame is not None
    assert frame.gray.shape == (480, 640)
    assert frame.full is not None
    assert frame.full.shape == (960, 1280)
    assert int(frame.gray[0, 0]) == 100
    assert frame.meta == {"ExposureTime": 4000}
    assert fake.requests[-1].released
    camera.stop()
    assert fake.closed


def test_without_picamera2_the_pi_camera_is_a_camera_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="picamera2"):
        Picamera2Camera().start()


def test_a_missing_usb_camera_is_a_camera_error() -> None:
    pytest.importorskip("cv2")
    with pytest.raises(CameraError, match="video63"):
        V4l2Camera(index=63).start()


def test_open_camera_parses_source_strings(tmp_path: Path) -> None:
    assert isinstance(open_camera("sim", simulated=make_sim_camera), SimCamera)
    replay = open_camera(f"replay:{tmp_path}")
    assert isinstance(replay, ReplayCamera)
    assert replay.path == tmp_path
    assert isinstance(open_camera("v4l2:2"), V4l2Camera)
    assert isinstance(open_camera("picamera2"), Picamera2Camera)
    assert open_camera("picamera2:pi-camera-v2").main_size == (1640, 1232)  # type: ignore[attr-defined]
    assert open_camera("none") is None
    for bad in ("replay:", "v4l2:x", "webcam", "usb:0", "sim"):  # sim: only with the simulator handed in
        with pytest.raises(SourceError):
            open_camera(bad)


def test_one_grammar_for_readers_and_cameras() -> None:
    assert str(parse_camera("v4l2:/dev/video2")) == "v4l2:2"
    assert str(parse_camera("v4l2:/dev/v4l/by-id/usb-cam")) == "v4l2:/dev/v4l/by-id/usb-cam"
    assert str(parse_reader("pcsc:ACS ACR1252")) == "pcsc:ACS ACR1252"
    assert parse_reader("sim:binh").arg == "binh"
    for bad in ("usb", "none:x", "nfc:1"):
        with pytest.raises(SourceError):
            parse_reader(bad)


def test_a_shipped_camera_profile_sets_streams_and_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=_FakePicamera2))
    camera = Picamera2Camera.from_profile("pi-camera-module-3", (1280, 960))
    assert camera.main_size == (2304, 1296)
    assert camera.lores_size == (1152, 648)
    camera.start()
    controls = _FakePicamera2.instances[-1].config["controls"]
    assert controls["LensPosition"] == 10.0  # type: ignore[index]
    assert controls["FrameRate"] == 10.0  # type: ignore[index]
    camera.stop()


def test_a_profile_file_without_sizes_uses_the_resolution(tmp_path: Path) -> None:
    path = tmp_path / "cam.toml"
    path.write_text("frame_rate = 5\n[controls]\nAfMode = 0\n")
    camera = Picamera2Camera.from_profile(str(path), (1600, 1200))
    assert camera.main_size == (1600, 1200)
    assert camera.lores_size == (800, 600)
    assert camera.controls == {"AfMode": 0}


def test_missing_or_broken_profiles_are_camera_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="not found"):
        Picamera2Camera.from_profile("no-such-camera")
    bad = tmp_path / "bad.toml"
    bad.write_text("main_size = [")
    with pytest.raises(CameraError, match="TOML"):
        Picamera2Camera.from_profile(str(bad))


def test_a_usb_camera_can_be_named_by_device_path() -> None:
    pytest.importorskip("cv2")
    assert V4l2Camera("3").index == 3
    with pytest.raises(CameraError, match="/dev/video-none"):
        V4l2Camera("/dev/video-none", (640, 480)).start()


def test_the_pi_camera_skips_unchanged_frames_without_copying_the_main_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=_FakePicamera2))
    camera = Picamera2Camera(unchanged_refresh=60.0)
    camera.start()
    fake = _FakePicamera2.instances[-1]
    assert camera.read(timeout=1.0) is not None
    assert camera.read(timeout=0.0) is None  # the same picture again
    assert fake.requests[-1].made == ["lores"]
    assert all(r.released for r in fake.requests)
    fake.lores_value = 180  # a card arrives
    frame = camera.read(timeout=0.0)
    assert frame is not None
    assert int(frame.gray[0, 0]) == 180
    camera.stop()
