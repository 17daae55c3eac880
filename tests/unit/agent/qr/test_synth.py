"""The synthetic card photos are shaped like real citizen-card QR codes."""

from __future__ import annotations

import numpy as np
from idstation.agent.qr.cccd import parse_cccd
from idstation.agent.sim.scene import SceneParams, qr_modules, render_scene
from idstation.agent.sim.synth import random_payload


def test_payloads_are_dense_utf8_citizen_payloads_in_qr_versions_7_to_9() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        text = random_payload(rng)
        assert 110 <= len(text.encode("utf-8")) <= 180
        assert parse_cccd(text).id_number.isdigit()
        size = qr_modules(text).shape[0]
        assert (size - 17) // 4 in (7, 8, 9)


def test_the_code_is_byte_mode_utf8_without_an_eci_marker_like_real_cards() -> None:
    import zxingcpp

    text = random_payload(np.random.default_rng(1))
    image = render_scene(text, SceneParams(width=800, height=600, ppm=5.0, defocus=0.3, seed=1))
    (result,) = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert result.symbology_identifier == "]Q1"  # ]Q2 would mean an ECI marker
    assert bytes(result.bytes) == text.encode("utf-8")


def test_an_empty_reader_renders_the_desk_only() -> None:
    image = render_scene(None, SceneParams(width=320, height=240))
    assert image.shape == (240, 320)
    assert image.dtype == np.uint8
    assert qr_modules(None).size == 0
