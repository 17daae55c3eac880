"""Resample a located but undecodable QR symbol onto a regular grid, following a bent surface.

Theory of operation. zxing-cpp maps the module grid to the image with one perspective transform
(plus alignment patterns on large versions). A code printed on cloth, or on a card that is not
flat, bends: the transform is right near the finder patterns and off by half a module or more
elsewhere, and the symbol fails its checksum although every module is sharp. ``rectify`` starts
from zxing-cpp's located corners and version, and corrects the transform with a smooth
displacement field measured on the image itself:

1. Control points every two modules. The symbol is resampled finely along the current grid;
   at each control point, the shift of the module columns (a fraction of a module) that puts
   the most contrast across the predicted column boundaries is found (a QR grid's edges lie on
   its module boundaries); the same for the rows.
2. A shift is only known modulo one module. Near the three finder patterns the located
   transform is right, so the shifts there are taken as measured; from there the field grows
   over the symbol, most confident point first, each point taking the whole-module offset that
   brings it closest to its solved neighbours (phase unwrapping).
3. The shifts are weighted by how clearly they stand out, smoothed over the neighbours (cloth
   bends smoothly; an area of one colour says nothing) and added to the grid; further passes
   (``passes``) search half as far each.
4. The symbol is resampled at a few pixels per module inside a white quiet zone and handed to
   zxing-cpp again. ``Rectified.to_frame`` maps the resampled image's pixels back to the frame.

numpy only (no BLAS calls); about 2-5 ms for a version 1-9 symbol on the development machine.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

__all__ = ["Rectified", "rectify"]

_REL_LINES = np.arange(-2.0, 3.0, dtype=np.float32)  # the module boundaries each control point looks at
_MAX_SHIFT = 3.0  # modules: a bend that moves modules farther than this is beyond repair here
_BAND = 2.5  # how far along the boundaries each control point looks, each way, in modules
_SPACING = 2.0  # modules between control points
_MAX_POINTS = 16  # control points per axis at most (their count bounds the cost on large symbols)
_FINE = 5  # samples per module when measuring shifts
_ACROSS = 0.3  # half the distance across a boundary that measures its contrast, in modules


@dataclass(frozen=True, slots=True)
class Rectified:
    """A symbol resampled onto a regular grid: ``image``, and how its pixels map to the frame."""

    image: np.ndarray
    modules: int
    ppm: int
    quiet: int
    _grid: _Grid

    def to_frame(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame coordinates of the resampled image's pixel coordinates ``x``, ``y``."""
        u = np.asarray(x, np.float32) / self.ppm - self.quiet
        v = np.asarray(y, np.float32) / self.ppm - self.quiet
        return self._grid.map(u, v)


def rectify(
    gray: np.ndarray, corners: np.ndarray, modules: int, *, ppm: int = 5, quiet: int = 4, passes: int = 1
) -> Rectified | None:
    """Resample the symbol of ``modules`` modules whose outer corners are ``corners``.

    ``corners`` is a 4x2 array (top-left, top-right, bottom-right, bottom-left) in ``gray``'s pixels.
    None when the corners do not describe a usable quadrilateral (degenerate, folded, not finite).
    """
    corners = np.asarray(corners, np.float64)
    if min(gray.shape) < 2 or corners.shape != (4, 2) or not np.isfinite(corners).all():
        return None
    homography = _homography(corners, modules)
    if not _keeps_orientation(homography, modules, _MAX_SHIFT + 3):
        return None
    image = gray.astype(np.float32)
    grid = _Grid(homography, modules)
    reach = 0.5
    for index in range(passes):
        grid.add(*_measure_shifts(image, grid, reach, unwrap=index == 0))
        reach /= 2
    size = (modules + 2 * quiet) * ppm
    coords = (np.arange(size, dtype=np.float32) + 0.5) / ppm - quiet
    out = _bilinear(image, *grid.map_regular(np.clip(coords, 0, modules)))
    outside = (coords < 0) | (coords > modules)
    out[outside, :] = 255.0
    out[:, outside] = 255.0
    return Rectified(np.clip(out + 0.5, 0, 255).astype(np.uint8), modules, ppm, quiet, grid)


class _Grid:
    """Module coordinates (u, v) -> image: a perspective transform after a smooth displacement."""

    def __init__(self, homography: np.ndarray, modules: int) -> None:
        self.h = homography.astype(np.float32)
        self.modules = modules
        count = int(np.clip(round(modules / _SPACING) + 1, 3, _MAX_POINTS))
        self.points = np.linspace(0.0, modules, count, dtype=np.float32)  # control points, both axes
        self.du = np.zeros((count, count), np.float32)
        self.dv = np.zeros((count, count), np.float32)

    def add(self, du: np.ndarray, dv: np.ndarray) -> None:
        self.du += du
        self.dv += dv

    def map(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pitch = self.modules / (self.points.size - 1)
        cu, cv = u / pitch, v / pitch
        return self.project(u + _bilinear(self.du, cu, cv), v + _bilinear(self.dv, cu, cv))

    def map_regular(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``map`` on the square grid ``coords`` x ``coords`` (rows: v), interpolating separably."""
        index, frac = _interpolation(coords, self.points)
        u = coords[None, :] + _resample(self.du, index, frac)
        v = coords[:, None] + _resample(self.dv, index, frac)
        return self.project(u, v)

    def project(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = self.h
        w = h[2, 0] * u + h[2, 1] * v + h[2, 2]
        return (h[0, 0] * u + h[0, 1] * v + h[0, 2]) / w, (h[1, 0] * u + h[1, 1] * v + h[1, 2]) / w


def _measure_shifts(image: np.ndarray, grid: _Grid, reach: float, *, unwrap: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per control point, the column and row shifts (in modules) that best fit the image's edges.

    The symbol is resampled finely (``fine`` samples per module, the current grid) once; the
    contrast across every sample column (row) is summed over each control point's band of rows
    (columns), and each shift is a whole number of samples plus a parabola's fraction.
    """
    n, margin = grid.modules, 3
    fine = _FINE
    across = max(1, round(_ACROSS * fine))
    coords = np.arange((n + 2 * margin) * fine + 1, dtype=np.float32) / fine - margin
    sampled = _bilinear(image, *grid.map_regular(coords))
    reach_steps = max(1, int(reach * fine))
    steps = np.arange(-reach_steps, reach_steps + 1)
    lines = (np.floor(grid.points)[:, None] + _REL_LINES[None, :] + margin) * fine  # (count, 5) sample index
    half_band = int(_BAND * fine)
    found = []
    count = grid.points.size
    for contrast in (_contrast(sampled, across), _contrast(sampled.T, across)):  # columns, then rows
        # contrast[r, c]: across column c at row r; band sums over rows around each control point
        sums = np.cumsum(np.pad(contrast, ((1, 0), (0, 0))), axis=0)
        centre = np.round((grid.points + margin) * fine).astype(np.intp)
        lo = np.clip(centre - half_band, 0, contrast.shape[0])
        hi = np.clip(centre + half_band + 1, 0, contrast.shape[0])
        band = sums[hi] - sums[lo]  # (count rows, samples across)
        index = np.clip(lines[:, None, :] + steps[None, :, None], 0, band.shape[1] - 1).astype(np.intp)
        score = band[:, index].sum(axis=3)  # (count rows, count cols, steps)
        score = score.reshape(-1, steps.size)
        best = np.argmax(score, axis=1)
        rows = np.arange(score.shape[0])
        shift = ((steps[best] + _parabola(score, best, rows)) / fine).astype(np.float32)
        weight = np.maximum(0.0, score[rows, best] - np.median(score, axis=1))
        found.append((shift.reshape(count, count), weight.reshape(count, count)))
    (du, wu), (dv, wv) = found[0], (found[1][0].T, found[1][1].T)
    if unwrap:
        du, dv = _unwrap(du, wu, grid), _unwrap(dv, wv, grid)
    limit = _MAX_SHIFT - np.abs(grid.du).max(initial=0), _MAX_SHIFT - np.abs(grid.dv).max(initial=0)
    return np.clip(_smooth(du, wu), -limit[0], limit[0]), np.clip(_smooth(dv, wv), -limit[1], limit[1])


def _unwrap(shift: np.ndarray, weight: np.ndarray, grid: _Grid) -> np.ndarray:
    """Shifts made continuous: each is only known modulo one module.

    Near the three finder patterns zxing-cpp's transform is right, so the shift there is the
    measured one. From there the grid grows, most confident point first, each point taking the
    whole-module offset that brings it closest to its already solved neighbours.
    """
    n, count = grid.modules, grid.points.size
    near_lo, near_hi = grid.points <= 8, grid.points >= n - 8
    seeds = (near_lo[:, None] & near_lo[None, :]) | (near_lo[:, None] & near_hi[None, :])
    seeds |= near_hi[:, None] & near_lo[None, :]
    out = shift.copy()
    solved = seeds.copy()
    heap: list[tuple[float, int, int]] = []
    for r, c in zip(*np.nonzero(seeds), strict=True):
        _push_neighbours(heap, solved, weight, int(r), int(c))
    while heap:
        _, r, c = heapq.heappop(heap)
        if solved[r, c]:
            continue
        total = norm = 0.0
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < count and 0 <= nc < count and solved[nr, nc]:
                w = float(weight[nr, nc]) + 1e-3
                total += w * float(out[nr, nc])
                norm += w
        ref = total / norm
        out[r, c] = shift[r, c] + round(ref - float(shift[r, c]))
        solved[r, c] = True
        _push_neighbours(heap, solved, weight, r, c)
    return out


def _push_neighbours(
    heap: list[tuple[float, int, int]], solved: np.ndarray, weight: np.ndarray, r: int, c: int
) -> None:
    rows, cols = solved.shape
    for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
        if 0 <= nr < rows and 0 <= nc < cols and not solved[nr, nc]:
            heapq.heappush(heap, (-float(weight[nr, nc]), nr, nc))


def _contrast(sampled: np.ndarray, across: int) -> np.ndarray:
    """|difference| across each sample column, ``across`` samples each side (zero at the ends)."""
    out = np.zeros_like(sampled)
    out[:, across:-across] = np.abs(sampled[:, 2 * across :] - sampled[:, : -2 * across])
    return out


def _parabola(score: np.ndarray, best: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sub-step position of each row's peak (a parabola through it and its neighbours)."""
    i = np.clip(best, 1, score.shape[1] - 2)
    left, mid, right = score[rows, i - 1], score[rows, i], score[rows, i + 1]
    denom = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where(denom < 0, 0.5 * (left - right) / denom, 0.0)
    out: np.ndarray = np.clip(peak + (i - best), -0.5, 0.5).astype(np.float32)
    return out


def _smooth(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted 3x3 average (weights 1-2-1): a fold bends smoothly; flat areas borrow from neighbours."""
    w = np.pad(weight + 1e-3, 1)
    vw = np.pad(values * (weight + 1e-3), 1)
    kernel = np.array([1.0, 2.0, 1.0], np.float32)
    rows, cols = values.shape
    num = np.zeros_like(values)
    den = np.zeros_like(values)
    for a in range(3):
        for b in range(3):
            k = kernel[a] * kernel[b]
            num += k * vw[a : a + rows, b : b + cols]
            den += k * w[a : a + rows, b : b + cols]
    out: np.ndarray = num / den
    return out


def _interpolation(coords: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``coords``: the evenly spaced ``points``' index below it, and the fraction past it."""
    pitch = float(points[-1] - points[0]) / (points.size - 1)
    pos = np.clip((coords - points[0]) / pitch, 0, points.size - 1)
    index = np.minimum(pos.astype(np.intp), points.size - 2)
    return index, (pos - index).astype(np.float32)


def _resample(table: np.ndarray, index: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """The control-point ``table`` linearly interpolated on the square grid (no BLAS: 2 shared cores)."""
    f = frac[:, None]
    rows = table[index] * (1 - f) + table[index + 1] * f
    out: np.ndarray = rows[:, index] * (1 - frac) + rows[:, index + 1] * frac
    return out


def _keeps_orientation(h: np.ndarray, modules: int, margin: float) -> bool:
    """Whether the transform is finite and keeps its orientation over the square and ``margin``
    modules around it (else the sampled points would fold over or run to infinity)."""
    if not np.isfinite(h).all():
        return False
    lo, hi = -margin, modules + margin
    square = np.array([(lo, lo, 1), (hi, lo, 1), (hi, hi, 1), (lo, hi, 1)], np.float64)
    w = square @ h[2]
    return bool((w > 1e-9).all() or (w < -1e-9).all())


def _homography(corners: np.ndarray, modules: int) -> np.ndarray:
    """The perspective transform taking the module square (0..modules)^2 to ``corners``."""
    src = np.array([(0, 0), (modules, 0), (modules, modules), (0, modules)], np.float64)
    rows = []
    for (x, y), (u, v) in zip(src, corners, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.array(rows))
    h: np.ndarray = vt[-1].reshape(3, 3)
    normalised: np.ndarray = h / h[2, 2]
    return normalised


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``image`` sampled at float coordinates (clamped to its edges)."""
    h, w = image.shape
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0 = x.astype(np.intp)
    y0 = y.astype(np.intp)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    flat = image.ravel()
    i = y0 * w + x0
    a, b = np.take(flat, i), np.take(flat, i + 1)
    c, d = np.take(flat, i + w), np.take(flat, i + w + 1)
    top = a + (b - a) * fx
    out: np.ndarray = top + (c + (d - c) * fx - top) * fy
    return out
