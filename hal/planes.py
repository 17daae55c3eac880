"""Image-plane helpers shared by the camera drivers (real and simulated)."""

from __future__ import annotations

import numpy as np

__all__ = ["downscale2"]


def downscale2(plane: np.ndarray) -> np.ndarray:
    """Average 2x2 blocks (the ISP's preview scaler, roughly)."""
    h, w = (plane.shape[0] // 2) * 2, (plane.shape[1] // 2) * 2
    blocks = plane[:h, :w].reshape(h // 2, 2, w // 2, 2).astype(np.uint16)
    out: np.ndarray = (blocks.sum(axis=(1, 3)) // 4).astype(np.uint8)
    return out
