"""The real camera on a box. Skipped unless IDSTATION_HIL_CAMERA names a source.

IDSTATION_HIL_CAMERA=picamera2 (or v4l2:0)   the camera to test
IDSTATION_HIL_QR_TEXT_FILE=path              optional: the exact text of the card under the camera
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from idstation.agent.qr.decode import QrDecoder
from idstation.hal.sources import open_camera

SOURCE = os.environ.get("IDSTATION_HIL_CAMERA")
pytestmark = [
    pytest.mark.hil,
    pytest.mark.skipif(not SOURCE, reason="IDSTATION_HIL_CAMERA is not set"),
]


def test_the_camera_delivers_grayscale_frames_steadily() -> None:
    camera = open_camera(SOURCE or "", fps=10.0)
    camera.start()
    try:
        frames = [camera.read(timeout=2.0) for _ in range(20)]
    finally:
        camera.stop()
    assert all(f is not None for f in frames)
    for frame in frames:
        assert frame is not None
        assert frame.gray.ndim == 2
        assert frame.gray.dtype == np.uint8
    seqs = [f.seq for f in frames if f is not None]
    assert seqs == sorted(seqs)


def test_the_card_under_the_camera_decodes_to_its_exact_text() -> None:
    text_file = os.environ.get("IDSTATION_HIL_QR_TEXT_FILE")
    if not text_file:
        pytest.skip("IDSTATION_HIL_QR_TEXT_FILE is not set")
    expected = Path(text_file).read_bytes().decode("utf-8")
    camera = open_camera(SOURCE or "", fps=10.0)
    decoder = QrDecoder()
    camera.start()
    try:
        deadline = time.monotonic() + 10.0
        hit = None
        for _ in range(200):
            if time.monotonic() > deadline:
                break
            frame = camera.read(timeout=1.0)
            hit = decoder.decode(frame) if frame is not None else None
            if hit is not None:
                break
    finally:
        camera.stop()
    assert hit is not None
    assert hit.text == expected
