"""The simulated card camera and changed-frame skipping."""

from __future__ import annotations

import numpy as np
import pytest
from idstation.agent.qr.decode import QrDecoder
from idstation.agent.sim.camera import SimCamera
from idstation.agent.sim.synth import random_payload
from idstation.hal.camera_change import ChangeDetector, ChangeGate, SkipUnchanged
from idstation.hal.errors import CameraError
from idstation.hal.planes import downscale2
from idstation.hal.ports import Camera, Frame

PAYLOAD = random_payload(np.random.default_rng(21))


class FakeClock:
    """Virtual time: sleep advances it instantly."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def _sim(payload: list[str | None], fps: float = 10.0) -> tuple[SimCamera, FakeClock]:
    clock = FakeClock()
    camera = SimCamera(lambda: payload[0], fps=fps, clock=clock, sleep=clock.sleep)
    return camera, clock


def test_the_sim_camera_is_a_camera_port_with_preview_and_full_planes() -> None:
    camera, _ = _sim([PAYLOAD])
    assert isinstance(camera, Camera)
    camera.start()
    frame = camera.read(timeout=1.0)
    assert frame is not None
    assert frame.full is not None
    assert frame.gray.shape == (480, 640)
    assert frame.full.shape == (960, 1280)
    assert frame.gray.dtype == np.uint8


def test_the_sim_camera_shows_the_current_payload_and_an_empty_reader() -> None:
    current: list[str | None] = [PAYLOAD]
    camera, _ = _sim(current)
    camera.start()
    decoder = QrDecoder()
    hit = decoder.decode(camera.read(1.0))  # type: ignore[arg-type]
    assert hit is not None
    assert hit.text == PAYLOAD
    current[0] = None
    assert decoder.decode(camera.read(1.0)) is None  # type: ignore[arg-type]
    other = random_payload(np.random.default_rng(22))
    current[0] = other
    hit = decoder.decode(camera.read(1.0))  # type: ignore[arg-type]
    assert hit is not None
    assert hit.text == other


def test_the_sim_camera_paces_frames_at_its_frame_rate() -> None:
    camera, _clock = _sim([None], fps=5.0)
    camera.start()
    stamps = []
    for _ in range(4):
        frame = camera.read(timeout=1.0)
        assert frame is not None
        stamps.append(frame.timestamp)
    assert np.allclose(np.diff(stamps), 0.2)
    assert [f for f in [camera.read(timeout=0.05)] if f is not None] == []  # next frame not due yet


def test_reading_a_stopped_sim_camera_is_a_camera_error() -> None:
    camera, _ = _sim([None])
    with pytest.raises(CameraError):
        camera.read(1.0)


def test_downscale2_averages_blocks() -> None:
    plane = np.array([[0, 2, 10, 10], [2, 4, 10, 10]], dtype=np.uint8)
    assert downscale2(plane).tolist() == [[2, 10]]


def test_the_change_detector_ignores_noise_and_sees_a_card_arrive() -> None:
    rng = np.random.default_rng(1)
    empty = rng.integers(90, 110, (480, 640)).astype(np.uint8)
    detector = ChangeDetector()
    assert detector.changed(empty)
    noisy = np.clip(empty + rng.normal(0, 1.5, empty.shape), 0, 255).astype(np.uint8)
    assert not detector.changed(noisy)
    card = empty.copy()
    card[100:380, 150:500] = 230
    assert detector.changed(card)
    assert not detector.changed(card)


class _StillCamera:
    """A camera that always sees the same picture, on virtual time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.image = np.full((120, 160), 80, np.uint8)
        self.seq = 0

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read(self, timeout: float) -> Frame | None:
        self.clock.sleep(0.1)
        self.seq += 1
        return Frame(gray=self.image, timestamp=self.clock(), seq=self.seq)


def test_skip_unchanged_passes_the_first_frame_then_one_per_refresh_period() -> None:
    clock = FakeClock()
    still = _StillCamera(clock)
    camera = SkipUnchanged(still, refresh=1.0, clock=clock)
    camera.start()
    first = camera.read(timeout=0.5)
    assert first is not None
    assert camera.read(timeout=0.5) is None  # nothing changed within the timeout
    assert camera.skipped >= 3
    again = camera.read(timeout=2.0)  # the refresh period elapsed
    assert again is not None
    still.image = np.full((120, 160), 200, np.uint8)
    changed = camera.read(timeout=0.5)
    assert changed is not None
    assert changed.gray.mean() == 200


def test_a_change_gate_admits_a_still_picture_once_per_refresh_period() -> None:
    clock = FakeClock()
    gate = ChangeGate(refresh=0.5, clock=clock)
    still = np.full((48, 64), 90, np.uint8)
    admitted = []
    for _ in range(10):  # one second of frames at 10 per second
        admitted.append(gate.admit(still))
        clock.sleep(0.1)
    assert sum(admitted) == 2
    assert gate.skipped == 8
