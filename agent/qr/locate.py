"""Cheap QR candidate regions, and the image operations used on them (numpy only).

When zxing-cpp neither decodes nor even locates a code (small, blurred codes), the decoder
needs regions worth upscaling. A QR code is a compact square of dense edges in both
directions; card print is lines of glyphs separated by gaps. ``candidate_regions`` scores
blocks by the density of horizontal and vertical edges, joins dense blocks into connected
components and ranks them by size, fill and squareness. Cost: a few milliseconds at 1280x960.
"""

from __future__ import annotations

import numpy as np

__all__ = ["candidate_regions", "gaussian", "sharpen", "stretch", "unsharp", "upscale"]

Box = tuple[int, int, int, int]  # x0, y0, x1, y1


def candidate_regions(gray: np.ndarray, block: int = 16, limit: int = 2) -> list[Box]:
    """Up to ``limit`` boxes (source pixels, with a margin) likely to hold a QR code, best first."""
    step = 2 if min(gray.shape) >= 480 else 1
    small = gray[::step, ::step].astype(np.int16)
    cell = max(4, block // step)
    sample = small[::4, ::4]
    lo, hi = np.percentile(sample, (5, 95))
    threshold = max(6.0, 0.12 * float(hi - lo))
    gx = np.abs(np.diff(small, axis=1)) > threshold
    gy = np.abs(np.diff(small, axis=0)) > threshold
    rows, cols = (small.shape[0] - 1) // cell, (small.shape[1] - 1) // cell
    if rows < 3 or cols < 3:
        return []
    ex = gx[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).mean(axis=(1, 3))
    ey = gy[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).mean(axis=(1, 3))
    energy = np.minimum(ex, ey)
    peak = float(np.percentile(energy, 99.5))
    if peak < 0.03:
        return []
    mask = energy >= max(0.03, 0.35 * peak)
    if mask.mean() > 0.25:  # busy background: keep only the densest cells
        mask = energy >= np.percentile(energy, 75)
    boxes = []
    for count, (r0, c0, r1, c1) in _components(mask):
        height, width = r1 - r0 + 1, c1 - c0 + 1
        if count < 4:
            continue
        fill = count / (height * width)
        square = min(height, width) / max(height, width)
        boxes.append((count * fill * square * square, (r0, c0, r1, c1)))
    boxes.sort(reverse=True)
    scale = cell * step
    out = []
    for _score, (r0, c0, r1, c1) in boxes[:limit]:
        margin = max(2, (max(r1 - r0, c1 - c0) + 1) // 5)
        out.append(
            (
                max(0, (c0 - margin) * scale),
                max(0, (r0 - margin) * scale),
                min(gray.shape[1], (c1 + 1 + margin) * scale),
                min(gray.shape[0], (r1 + 1 + margin) * scale),
            )
        )
    return out


def _components(mask: np.ndarray) -> list[tuple[int, tuple[int, int, int, int]]]:
    """4-connected components of a small boolean grid: (cell count, (r0, c0, r1, c1))."""
    seen = np.zeros_like(mask)
    rows, cols = mask.shape
    found = []
    for r, c in zip(*np.nonzero(mask), strict=True):
        if seen[r, c]:
            continue
        seen[r, c] = True
        stack = [(int(r), int(c))]
        count, r0, c0, r1, c1 = 0, int(r), int(c), int(r), int(c)
        while stack:
            y, x = stack.pop()
            count += 1
            r0, r1, c0, c1 = min(r0, y), max(r1, y), min(c0, x), max(c1, x)
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < rows and 0 <= nx < cols and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        found.append((count, (r0, c0, r1, c1)))
    return found


def stretch(img: np.ndarray) -> np.ndarray:
    """Linear contrast stretch between the 1st and 99th percentiles (dim frames, glare haze)."""
    sample = img[:: max(1, img.shape[0] // 64), :: max(1, img.shape[1] // 64)]
    lo, hi = np.percentile(sample, (1, 99))
    if hi - lo < 8:
        return img
    # a lookup table: the same values as stretching every pixel, without image-sized temporaries
    scaled = (np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    table = np.clip(scaled, 0, 255).astype(np.uint8)
    out: np.ndarray = table[img]
    return out


def upscale(img: np.ndarray, factor: float) -> np.ndarray:
    """Bilinear upscale by ``factor`` (separable: rows, then columns)."""
    h, w = img.shape
    if h < 2 or w < 2:
        return img
    if factor == 2.0:
        return _double(img)
    rows = _linear_along(img.astype(np.float32), round(h * factor), factor, axis=0)
    both = _linear_along(rows, round(w * factor), factor, axis=1)
    both += 0.5
    np.clip(both, 0, 255, out=both)
    out: np.ndarray = both.astype(np.uint8)
    return out


def _double(img: np.ndarray) -> np.ndarray:
    """``upscale(img, 2.0)`` in 16-bit integers (weights 3/4, 1/4): the same pixels, a quarter of
    the float version's memory traffic (large float temporaries evicted the next frame's cache)."""
    padded = np.pad(img, 1, mode="edge").astype(np.uint16)
    h, w = img.shape
    rows = np.empty((2 * h, w + 2), np.uint16)
    centre = 3 * padded[1:-1]
    np.add(centre, padded[:-2], out=rows[0::2])
    np.add(centre, padded[2:], out=rows[1::2])
    out = np.empty((2 * h, 2 * w), np.uint16)
    centre = 3 * rows[:, 1:-1]
    np.add(centre, rows[:, :-2], out=out[:, 0::2])
    np.add(centre, rows[:, 2:], out=out[:, 1::2])
    out += 8
    out >>= 4
    return out.astype(np.uint8)


def _linear_along(src: np.ndarray, size: int, factor: float, axis: int) -> np.ndarray:
    n = src.shape[axis]
    pos = (np.arange(size, dtype=np.float32) + 0.5) / factor - 0.5
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, n - 2)
    frac = np.clip(pos - i0, 0, 1).astype(np.float32)  # float64 here made the product 10x slower
    a = np.take(src, i0, axis=axis)
    out: np.ndarray = np.take(src, i0 + 1, axis=axis)
    weight = frac[:, None] if axis == 0 else frac[None, :]
    out -= a  # a + (b - a) * weight, in place
    out *= weight
    out += a
    return out


def sharpen(img: np.ndarray, sigma: float = 1.0, amount: float = 1.0) -> np.ndarray:
    """Unsharp mask: ``img + amount * (img - gaussian(img, sigma))`` (against defocus)."""
    return unsharp(img, gaussian(img, sigma), amount)


def unsharp(img: np.ndarray, blurred: np.ndarray, amount: float) -> np.ndarray:
    """``img + amount * (img - blurred)`` as uint8 (one blur can serve several amounts)."""
    src = img.astype(np.float32)
    out = blurred - src
    out *= -amount  # amount * (src - blurred)
    out += src
    np.clip(out, 0, 255, out=out)
    result: np.ndarray = out.astype(np.uint8)
    return result


def gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur as float32 (edges repeated).

    Accumulated in place: per-tap temporaries of the whole image were most of the extra tries'
    memory traffic, which evicted the next frame's working set from the caches.
    """
    radius = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-(np.arange(-radius, radius + 1, dtype=np.float32) ** 2) / (2 * sigma**2))
    k /= k.sum()
    padded = np.pad(img.astype(np.float32), radius, mode="edge")
    h, w = img.shape
    term = np.empty((padded.shape[0], w), np.float32)
    tmp = np.zeros((padded.shape[0], w), np.float32)
    for i in range(k.size):
        tmp += np.multiply(padded[:, i : i + w], k[i], out=term)
    blur = np.zeros((h, w), np.float32)
    for i in range(k.size):
        blur += np.multiply(tmp[i : i + h, :], k[i], out=term[:h])
    return blur
