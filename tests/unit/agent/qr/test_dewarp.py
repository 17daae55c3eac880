"""Resampling a located symbol along its bent grid (codes on cloth or curved cards)."""

from __future__ import annotations

import numpy as np
import pytest
from idstation.agent.qr.decode import DecoderConfig, QrDecoder
from idstation.agent.qr.dewarp import rectify
from idstation.agent.sim.scene import qr_modules

TEXT = "http://example.org/a-code-printed-on-a-t-shirt"
PPM = 5  # pixels per module
MARGIN = 40  # pixels of dark cloth around the white quiet zone


def _flat_code(text: str = TEXT) -> np.ndarray:
    modules = qr_modules(text, error="L")
    code = np.where(np.kron(modules, np.ones((PPM, PPM))), 20.0, 235.0)
    code = np.pad(code, 4 * PPM, constant_values=235.0)
    return np.pad(code, MARGIN, constant_values=40.0).astype(np.float32)


def _bent(image: np.ndarray, amplitude: float, period: float) -> np.ndarray:
    """A smooth bend: each axis displaced by ``amplitude`` modules, sinusoidally along the other."""
    h, w = image.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    sx = np.clip(x + amplitude * PPM * np.sin(2 * np.pi * y / (period * w)), 0, w - 1)
    sy = np.clip(y + amplitude * PPM * np.sin(2 * np.pi * x / (period * w) + 1.0), 0, h - 1)
    x0, y0 = sx.astype(int), sy.astype(int)  # nearest-below sampling is enough for a test scene
    return image[y0, x0].astype(np.uint8)


def _outer_corners(image: np.ndarray, text: str = TEXT) -> np.ndarray:
    n = qr_modules(text, error="L").shape[0]
    first = MARGIN + 4 * PPM
    last = first + n * PPM
    return np.array([(first, first), (last, first), (last, last), (first, last)], np.float64)


@pytest.mark.parametrize(("amplitude", "period"), [(0.7, 0.8), (0.9, 0.9)])
def test_a_bent_code_that_one_perspective_cannot_sample_decodes_from_the_resampled_grid(
    amplitude: float, period: float
) -> None:
    import zxingcpp

    image = _bent(_flat_code(), amplitude, period)
    plain = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert not any(r.text == TEXT for r in plain)  # the scene is hard for zxing-cpp alone
    hit = QrDecoder().decode(image)
    assert hit is not None
    assert hit.text == TEXT
    assert hit.strategy == "dewarp"


def test_the_dewarp_try_can_be_switched_off() -> None:
    image = _bent(_flat_code(), amplitude=0.7, period=0.8)
    tries = tuple(t for t in DecoderConfig().tries if t != "dewarp")
    hit = QrDecoder(DecoderConfig(tries=tries)).decode(image)
    assert hit is None or hit.strategy != "dewarp"


def test_a_flat_code_resampled_from_its_corners_is_a_clean_upright_symbol() -> None:
    import zxingcpp

    flat = _flat_code().astype(np.uint8)
    n = qr_modules(TEXT, error="L").shape[0]
    rectified = rectify(flat, _outer_corners(flat), n, ppm=4, quiet=4)
    assert rectified.image.shape == ((n + 8) * 4, (n + 8) * 4)
    assert [r.text for r in zxingcpp.read_barcodes(rectified.image, formats=zxingcpp.BarcodeFormat.QRCode)] == [TEXT]


@pytest.mark.parametrize("corner", range(4))
def test_resampled_pixels_map_back_to_the_frame(corner: int) -> None:
    flat = _flat_code().astype(np.uint8)
    n = qr_modules(TEXT, error="L").shape[0]
    corners = _outer_corners(flat)
    rectified = rectify(flat, corners, n, ppm=4, quiet=4)
    ends = (4 * 4, (n + 4) * 4)  # the symbol's outer edge in the resampled image
    rx = ends[corner in (1, 2)]
    ry = ends[corner in (2, 3)]
    x, y = rectified.to_frame(np.array([rx], np.float32), np.array([ry], np.float32))
    assert abs(float(x[0]) - corners[corner][0]) < 0.5 * PPM
    assert abs(float(y[0]) - corners[corner][1]) < 0.5 * PPM


@pytest.mark.parametrize(
    "corners",
    [
        [(10, 10), (10, 10), (10, 10), (10, 10)],  # a point
        [(10, 10), (90, 90), (90, 10), (10, 90)],  # folded over
        [(10, 10), (float("nan"), 10), (90, 90), (10, 90)],
    ],
)
def test_corners_that_describe_no_usable_quadrilateral_give_none(corners: list[tuple[float, float]]) -> None:
    flat = _flat_code().astype(np.uint8)
    assert rectify(flat, np.array(corners, np.float64), 29) is None
