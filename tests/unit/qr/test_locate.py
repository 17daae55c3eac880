"""Cheap QR candidate regions for codes zxing-cpp does not locate by itself."""

from __future__ import annotations

import numpy as np
from idstation.agent.qr.locate import candidate_regions, sharpen, stretch, upscale
from idstation.agent.qr.synth import synthetic_photos
from idstation.hal.camera_scene import SceneParams, render_scene


def test_the_best_candidate_holds_the_code_on_synthetic_card_photos() -> None:
    found = 0
    photos = list(synthetic_photos(20, seed=123))
    for photo in photos:
        cx, cy = photo.params.qr_x * photo.params.width, photo.params.qr_y * photo.params.height
        boxes = candidate_regions(photo.image)
        found += any(x0 < cx < x1 and y0 < cy < y1 for x0, y0, x1, y1 in boxes[:1])
    assert found >= 19


def test_flat_and_tiny_frames_have_no_candidates() -> None:
    assert candidate_regions(np.full((480, 640), 120, np.uint8)) == []
    assert candidate_regions(np.zeros((20, 20), np.uint8)) == []
    assert len(candidate_regions(render_scene(None, SceneParams(width=640, height=480)))) <= 2


def test_image_operations_keep_shape_type_and_range() -> None:
    img = np.random.default_rng(0).integers(60, 120, (50, 70)).astype(np.uint8)
    assert upscale(img, 2.0).shape == (100, 140)
    assert upscale(img, 1.5).dtype == np.uint8
    stretched = stretch(img)
    assert stretched.min() == 0
    assert stretched.max() == 255
    assert sharpen(img, sigma=1.5, amount=1.0).shape == img.shape
    flat = np.full((10, 10), 7, np.uint8)
    assert np.array_equal(stretch(flat), flat)
