"""Find and decode the card's QR code in a grayscale camera frame with zxing-cpp.

Theory of operation. Most frames decode with one plain zxing-cpp call restricted to QR codes,
so that call comes first and costs what a raw call costs. Only when it fails do further tries
run, cheapest first, until one decodes or the per-frame time budget is spent:

1. ``full``: when the frame carries a full-resolution plane (picamera2 main stream) and the
   preview found nothing, the full plane is searched too.
2. ``roi``: zxing-cpp reports symbols it located but could not decode (``return_errors``);
   their region, cut from the full-resolution plane when there is one, is decoded again with
   other binarizers, contrast stretched, sharpened and upscaled (dense version 7-9 codes need
   about 2.5-4 pixels per module; upscaling a small region helps the sampler).
3. ``frame``: with no located symbol, the whole frame with the other binarizers, then
   contrast-stretched and (for small frames) upscaled.

Everything is numpy slicing and zxing-cpp's own options; OpenCV is not needed. zxing-cpp's
text output transcodes the payload's bytes (UTF-8 without ECI on citizen cards, legacy
Shift_JIS on some other codes) correctly; zbar must never be used for these cards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from idstation.hal.ports import Frame

__all__ = ["DecoderConfig", "QrDecoder", "QrHit"]

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class DecoderConfig:
    """How hard to try on a frame. ``budget_ms`` bounds the extra tries, not the first call."""

    budget_ms: float = 250.0
    tries: tuple[str, ...] = ("full", "roi", "frame")
    binarizers: tuple[str, ...] = ("GlobalHistogram", "LocalAverage", "FixedThreshold")
    roi_margin: float = 0.25  # of the located symbol's size, on each side
    upscale_below_px: int = 400  # upscale a region (or frame) whose symbol is smaller than this
    max_upscale: float = 3.0
    frame_upscale_max_px: int = 800  # upscale whole frames only up to this long side
    try_rotate: bool = True


@dataclass(frozen=True, slots=True)
class QrHit:
    """A decoded QR code. ``position`` is its four corners in the frame's full-resolution pixels."""

    text: str
    raw: bytes
    position: tuple[Point, Point, Point, Point]
    tries: int
    ms: float
    strategy: str

    def __repr__(self) -> str:  # the text is personal data on citizen cards
        return f"QrHit(<{len(self.raw)} bytes>, strategy={self.strategy!r}, tries={self.tries}, ms={self.ms:.1f})"

    __str__ = __repr__


@dataclass(slots=True)
class _Attempt:
    """Bookkeeping for one frame: try counter, deadline, regions located but not decoded."""

    deadline: float
    tries: int = 0
    regions: list[tuple[np.ndarray, float]] | None = None  # (corners in full coords, symbol size)


class QrDecoder:
    """Decode the QR code in frames; thread-compatible (no shared mutable state)."""

    def __init__(self, config: DecoderConfig | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.config = config or DecoderConfig()
        self._clock = clock

    def decode(self, frame: Frame | np.ndarray) -> QrHit | None:
        """The first QR code found in ``frame``, or None. Bad input is a ``TypeError`` (a bug)."""
        gray, full = _planes(frame)
        start = self._clock()
        attempt = _Attempt(deadline=start + self.config.budget_ms / 1000)
        scale = (full.shape[1] / gray.shape[1]) if full is not None else 1.0
        for strategy, image, to_full, binarizer in self._plan(gray, full, scale, attempt):
            found = self._read(image, binarizer, attempt, to_full, errors=True)
            if found is not None:
                text, raw, corners = found
                ms = (self._clock() - start) * 1000
                return QrHit(text, raw, corners, attempt.tries, ms, strategy)
            if attempt.tries > 1 and self._clock() > attempt.deadline:
                break
        return None

    # --- the plan: a lazy sequence of (strategy, image, affine to full coords, binarizer) ----------

    def _plan(
        self, gray: np.ndarray, full: np.ndarray | None, scale: float, attempt: _Attempt
    ) -> Iterator[tuple[str, np.ndarray, tuple[float, float, float], str]]:
        tries = self.config.tries
        yield "first", gray, (scale, 0.0, 0.0), "LocalAverage"
        if full is not None and "full" in tries and not attempt.regions:
            yield "full", full, (1.0, 0.0, 0.0), "LocalAverage"
        source = full if full is not None else gray
        if "roi" in tries:
            seen: list[np.ndarray] = []
            for corners, size in list(attempt.regions or ()):
                if any(np.abs(corners - other).max() < size * 0.2 for other in seen):
                    continue
                seen.append(corners)
                yield from self._region_tries(source, corners, size)
        if "frame" in tries and not attempt.regions:
            yield from self._frame_tries(source)

    def _region_tries(
        self, source: np.ndarray, corners: np.ndarray, size: float
    ) -> Iterator[tuple[str, np.ndarray, tuple[float, float, float], str]]:
        cfg = self.config
        margin = size * cfg.roi_margin
        h, w = source.shape
        x0 = int(max(0, corners[:, 0].min() - margin))
        y0 = int(max(0, corners[:, 1].min() - margin))
        x1 = int(min(w, corners[:, 0].max() + margin + 1))
        y1 = int(min(h, corners[:, 1].max() + margin + 1))
        crop = source[y0:y1, x0:x1]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            return
        stretched = _stretch(crop)
        for binarizer in cfg.binarizers:
            yield "roi", stretched, (1.0, x0, y0), binarizer
        factor = min(cfg.max_upscale, max(2.0, cfg.upscale_below_px / max(size, 1.0)))
        if size < cfg.upscale_below_px:
            big = _upscale(stretched, factor)
            for binarizer in cfg.binarizers[:2]:
                yield "roi_upscaled", big, (1.0 / factor, x0, y0), binarizer
            sharp = _sharpen(big)
            yield "roi_sharpened", sharp, (1.0 / factor, x0, y0), "LocalAverage"

    def _frame_tries(self, source: np.ndarray) -> Iterator[tuple[str, np.ndarray, tuple[float, float, float], str]]:
        cfg = self.config
        for binarizer in cfg.binarizers[:1]:
            yield "frame", source, (1.0, 0.0, 0.0), binarizer
        stretched = _stretch(source)
        yield "frame_stretched", stretched, (1.0, 0.0, 0.0), "LocalAverage"
        if max(source.shape) <= cfg.frame_upscale_max_px:
            big = _upscale(stretched, 2.0)
            yield "frame_upscaled", big, (0.5, 0.0, 0.0), "LocalAverage"
        sharp = _sharpen(stretched)
        yield "frame_sharpened", sharp, (1.0, 0.0, 0.0), "LocalAverage"

    # --- one zxing-cpp call ------------------------------------------------------------------------

    def _read(
        self,
        image: np.ndarray,
        binarizer: str,
        attempt: _Attempt,
        to_full: tuple[float, float, float],
        errors: bool,
    ) -> tuple[str, bytes, tuple[Point, Point, Point, Point]] | None:
        import zxingcpp

        attempt.tries += 1
        results = zxingcpp.read_barcodes(
            image,
            formats=zxingcpp.BarcodeFormat.QRCode,
            try_rotate=self.config.try_rotate,
            binarizer=getattr(zxingcpp.Binarizer, binarizer),
            return_errors=errors,
            text_mode=zxingcpp.TextMode.Plain,  # the payload as encoded (no GS1/HRI rewriting)
        )
        for result in results:
            corners = _corners(result.position, to_full)
            if result.valid:
                return result.text, bytes(result.bytes), corners
            if attempt.regions is None:
                attempt.regions = []
            array = np.array(corners)
            size = float(np.linalg.norm(array[0] - array[2]) / 1.414)
            if len(attempt.regions) < 4:
                attempt.regions.append((array, size))
        return None


def _planes(frame: Frame | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(frame, Frame):
        gray, full = frame.gray, frame.full
    elif isinstance(frame, np.ndarray):
        gray, full = frame, None
    else:
        raise TypeError(f"decode() takes a Frame or a numpy array, not {type(frame).__name__}")
    for plane in (gray, full):
        if plane is not None and (plane.ndim != 2 or plane.dtype != np.uint8):
            raise TypeError("frames are 2-D uint8 grayscale arrays")
    if full is not None and full.shape == gray.shape:
        full = None
    return gray, full


def _corners(position: object, to_full: tuple[float, float, float]) -> tuple[Point, Point, Point, Point]:
    scale, dx, dy = to_full
    points = []
    for name in ("top_left", "top_right", "bottom_right", "bottom_left"):
        p = getattr(position, name)
        points.append((p.x * scale + dx, p.y * scale + dy))
    return (points[0], points[1], points[2], points[3])


def _stretch(img: np.ndarray) -> np.ndarray:
    """Linear contrast stretch between the 1st and 99th percentiles (dim frames, glare haze)."""
    sample = img[:: max(1, img.shape[0] // 64), :: max(1, img.shape[1] // 64)]
    lo, hi = np.percentile(sample, (1, 99))
    if hi - lo < 8:
        return img
    out = (img.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def _upscale(img: np.ndarray, factor: float) -> np.ndarray:
    """Bilinear upscale by ``factor`` (numpy only)."""
    h, w = img.shape
    nh, nw = round(h * factor), round(w * factor)
    ys = (np.arange(nh, dtype=np.float32) + 0.5) / factor - 0.5
    xs = (np.arange(nw, dtype=np.float32) + 0.5) / factor - 0.5
    y0 = np.clip(np.floor(ys).astype(np.int32), 0, h - 2)
    x0 = np.clip(np.floor(xs).astype(np.int32), 0, w - 2)
    fy = np.clip(ys - y0, 0, 1)[:, None]
    fx = np.clip(xs - x0, 0, 1)[None, :]
    src = img.astype(np.float32)
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x0 + 1] * fx
    bottom = src[y0 + 1][:, x0] * (1 - fx) + src[y0 + 1][:, x0 + 1] * fx
    return np.clip(top * (1 - fy) + bottom * fy + 0.5, 0, 255).astype(np.uint8)


def _sharpen(img: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Unsharp mask with a 3x3 box blur (defocus)."""
    src = img.astype(np.float32)
    padded = np.pad(src, 1, mode="edge")
    h, w = img.shape
    blur = sum(padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0
    return np.clip(src + amount * (src - blur), 0, 255).astype(np.uint8)
