"""Cheap QR candidate regions for codes zxing-cpp does not locate by itself."""

from __future__ import annotations

import numpy as np
from idstation.agent.qr.locate import candidate_regions, sharpen, stretch, upscale
from idstation.agent.sim.scene import SceneParams, render_scene
from idstation.agent.sim.synth import synthetic_photos


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


def test_the_integer_2x_upscale_gives_the_same_pixels_as_the_bilinear_formula() -> None:
    from idstation.agent.qr.locate import _linear_along

    img = np.random.default_rng(1).integers(0, 256, (37, 53)).astype(np.uint8)
    rows = _linear_along(img.astype(np.float32), 74, 2.0, axis=0)
    reference = np.clip(_linear_along(rows, 106, 2.0, axis=1) + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(upscale(img, 2.0), reference)


def test_one_blur_serves_several_sharpening_amounts() -> None:
    from idstation.agent.qr.locate import gaussian, unsharp

    img = np.random.default_rng(2).integers(0, 256, (40, 30)).astype(np.uint8)
    soft = gaussian(img, 2.0)
    assert np.array_equal(unsharp(img, soft, 1.5), sharpen(img, sigma=2.0, amount=1.5))
    assert np.array_equal(unsharp(img, soft, 2.5), sharpen(img, sigma=2.0, amount=2.5))
