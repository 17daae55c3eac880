"""Find and decode the card's QR code in a grayscale camera frame with zxing-cpp.

Theory of operation. Most frames decode with one plain zxing-cpp call restricted to QR codes,
so that call comes first and costs less than a raw call: it skips zxing-cpp's downscaled pyramid
and its inverted (light-on-dark) pass, which only some frames need and which later tries restore.
Only when it fails do further tries run, cheapest first, until one decodes or the per-frame time
budget is spent:

1. ``full``: when the frame carries a full-resolution plane (picamera2 main stream) and the
   preview found nothing, the full plane is searched too.
2. ``inverted``: with nothing located, the inverted preview (light-on-dark codes).
3. ``dewarp``: zxing-cpp reports symbols it located but could not decode (``return_errors``)
   with their version; a symbol that fails its checksum with sharp modules usually sits on a
   bent surface (cloth, a curved card), which one perspective transform cannot sample. It is
   resampled along its grid corrected by a smooth displacement field (``qr/dewarp.py``).
4. ``roi``: those located symbols' regions, cut from the full-resolution plane when there is
   one, decoded again with other binarizers, contrast stretched, sharpened and upscaled (dense
   version 7-9 codes need about 2.5-4 pixels per module; upscaling a small region helps the
   sampler); then the regions of the edge-density locator (``qr/locate.py``).
5. ``frame``: on large frames first the plain call again with zxing-cpp's downscaled pyramid
   (``downscaled``; it only helps codes of many pixels per module and made the first calls up
   to 40% slower), then the whole frame with the other binarizers, then contrast-stretched and
   (for small frames) upscaled.

Everything is numpy slicing and zxing-cpp's own options; OpenCV is not needed. zxing-cpp's
text output transcodes the payload's bytes (UTF-8 without ECI on citizen cards, legacy
Shift_JIS on some other codes) correctly; zbar must never be used for these cards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from idstation.agent.qr.dewarp import rectify
from idstation.agent.qr.locate import candidate_regions, gaussian, sharpen, stretch, unsharp, upscale
from idstation.hal.ports import Frame

__all__ = ["DecoderConfig", "QrDecoder", "QrHit"]

Point = tuple[float, float]
# image pixels -> full-resolution pixels: (scale, dx, dy), or a mapping of coordinate arrays
ToFull = tuple[float, float, float] | Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class DecoderConfig:
    """How hard to try on a frame. ``budget_ms`` bounds the extra tries, not the first call."""

    budget_ms: float = 250.0
    tries: tuple[str, ...] = ("full", "inverted", "dewarp", "roi", "locate", "frame")
    roi_margin: float = 0.2  # of the located symbol's size, on each side
    upscale_to_px: int = 480  # regions smaller than this are upscaled (and sharpened) towards it
    max_upscale: float = 3.0
    frame_upscale_max_px: int = 800  # upscale whole frames only up to this long side
    try_rotate: bool = True
    dewarp_max_version: int = 10  # bent-surface resampling costs ~ modules^2: 2-6 ms up to version 10


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


class _Region(NamedTuple):
    """A symbol zxing-cpp located but could not decode, in full-resolution coordinates."""

    corners: np.ndarray  # 4x2: top-left, top-right, bottom-right, bottom-left
    side: float
    modules: int | None  # from its version; None for Micro QR / rMQR or when unknown


class _Try(NamedTuple):
    """One planned zxing-cpp call: on ``image``, whose pixels map to full coordinates by ``to_full``."""

    strategy: str
    image: np.ndarray
    to_full: ToFull
    binarizer: str
    min_side: float = 0.0  # in full-resolution pixels


@dataclass(slots=True)
class _Attempt:
    """Bookkeeping for one frame: try counter, deadline, regions located but not decoded."""

    deadline: float
    tries: int = 0
    regions: list[_Region] | None = None


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
        for step in self._plan(gray, full, scale, attempt):
            # zxing-cpp's downscaled pyramid only helps codes of many pixels per module, and its
            # inverted pass only light-on-dark codes: the first calls skip both (together they made
            # a call up to 1.8x slower, for no hit on a dark-on-light code); the "inverted" and
            # "downscaled" tries and the later tries pay for them
            plain = step.strategy in ("first", "full", "inverted", "dewarp")
            found = self._read(step, attempt, downscale=not plain, invert=not plain)
            if found is not None:
                text, raw, corners = found
                ms = (self._clock() - start) * 1000
                return QrHit(text, raw, corners, attempt.tries, ms, step.strategy)
            if attempt.tries > 1 and self._clock() > attempt.deadline:
                break
        return None

    # --- the plan: a lazy sequence of tries -------------------------------------------------------

    def _plan(self, gray: np.ndarray, full: np.ndarray | None, scale: float, attempt: _Attempt) -> Iterator[_Try]:
        tries = self.config.tries
        yield _Try("first", gray, (scale, 0.0, 0.0), "LocalAverage")
        if full is not None and "full" in tries and not attempt.regions:
            yield _Try("full", full, (1.0, 0.0, 0.0), "LocalAverage")
        source = full if full is not None else gray
        if "inverted" in tries and not attempt.regions:  # nothing located: maybe light on dark
            yield _Try("inverted", np.subtract(255, gray, dtype=np.uint8), (scale, 0.0, 0.0), "LocalAverage")
        if "dewarp" in tries:
            yield from self._dewarp_tries(source, list(attempt.regions or ()))
        if "roi" in tries:
            margin = self.config.roi_margin
            boxes = [_box(region.corners, region.side * margin, source.shape) for region in attempt.regions or ()]
            if "locate" in tries:
                boxes += [_scale_box(box, scale, source.shape) for box in candidate_regions(gray)]
            for box in _distinct(boxes):
                yield from self._region_tries(source, box)
        if "frame" in tries:
            if max(source.shape) > self.config.frame_upscale_max_px:
                yield _Try("downscaled", source, (1.0, 0.0, 0.0), "LocalAverage")
            yield from self._frame_tries(source)

    def _dewarp_tries(self, source: np.ndarray, regions: list[_Region]) -> Iterator[_Try]:
        """Located symbols of known size, resampled along their bent grid (cloth, curved cards)."""
        limit = 17 + 4 * self.config.dewarp_max_version
        known = [(r, r.modules) for r in regions if r.modules is not None and r.modules <= limit]
        known.sort(key=lambda pair: -pair[0].side)
        for region, modules in known[:2]:
            rectified = rectify(source, region.corners, modules)
            if rectified is not None:
                yield _Try("dewarp", rectified.image, rectified.to_frame, "LocalAverage", 0.5 * region.side)

    def _region_tries(self, source: np.ndarray, box: tuple[int, int, int, int]) -> Iterator[_Try]:
        cfg = self.config
        x0, y0, x1, y1 = box
        crop = source[y0:y1, x0:x1]
        if crop.shape[0] < 16 or crop.shape[1] < 16:
            return
        min_side = 0.3 * min(crop.shape)  # a region try expects the code to fill a good part of it
        side = max(crop.shape)
        factor = min(cfg.max_upscale, max(2.0, cfg.upscale_to_px / side))
        if side < cfg.upscale_to_px:
            to_full = (1.0 / factor, x0, y0)
            big = upscale(crop, factor)
            yield _Try("roi_upscaled", big, to_full, "LocalAverage", min_side)
            soft = gaussian(big, sigma=factor)  # one blur, two amounts
            yield _Try("roi_upscaled", unsharp(big, soft, amount=1.5), to_full, "LocalAverage", min_side)
            yield _Try("roi_upscaled", stretch(unsharp(big, soft, amount=2.5)), to_full, "FixedThreshold", min_side)
            del soft
            mild = sharpen(big, sigma=0.7 * factor, amount=0.8)
            yield _Try("roi_upscaled", mild, to_full, "LocalAverage", min_side)
        yield _Try("roi", crop, (1.0, x0, y0), "GlobalHistogram", min_side)
        yield _Try("roi", stretch(crop), (1.0, x0, y0), "LocalAverage", min_side)

    def _frame_tries(self, source: np.ndarray) -> Iterator[_Try]:
        yield _Try("frame", source, (1.0, 0.0, 0.0), "GlobalHistogram")
        if max(source.shape) <= self.config.frame_upscale_max_px:
            yield _Try("frame_upscaled", upscale(source, 2.0), (0.5, 0.0, 0.0), "GlobalHistogram")

    # --- one zxing-cpp call ------------------------------------------------------------------------

    def _read(
        self, step: _Try, attempt: _Attempt, *, downscale: bool = False, invert: bool = True
    ) -> tuple[str, bytes, tuple[Point, Point, Point, Point]] | None:
        """One zxing-cpp call; the largest valid symbol of at least ``step.min_side`` (full-frame px).

        Symbols located but not decoded are remembered as regions for later tries. ``min_side``
        rejects the tiny "codes" zxing-cpp occasionally reads out of a dense code's alignment
        patterns when a region is searched (a version 1 symbol inside a version 7-9 one).
        """
        import zxingcpp

        attempt.tries += 1
        results = zxingcpp.read_barcodes(
            step.image,
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
            try_rotate=self.config.try_rotate,
            try_downscale=downscale,
            try_invert=invert,
            binarizer=getattr(zxingcpp.Binarizer, step.binarizer),
            return_errors=True,
            text_mode=zxingcpp.TextMode.Plain,  # the payload as encoded (no GS1/HRI rewriting)
        )
        best: tuple[float, str, bytes, tuple[Point, Point, Point, Point]] | None = None
        for result in results:
            corners = _corners(result.position, step.to_full)
            array = np.array(corners)
            side = float(np.linalg.norm(array[0] - array[2]) / 1.414)
            if not result.valid:
                if attempt.regions is None:
                    attempt.regions = []
                if len(attempt.regions) < 4:
                    attempt.regions.append(_Region(array, side, _modules(result)))
            elif side >= step.min_side and (best is None or side > best[0]):
                best = (side, result.text, bytes(result.bytes), corners)
        return best[1:] if best is not None else None


def _modules(result: object) -> int | None:
    """A located QR symbol's width in modules, from the version zxing-cpp read (None if unknown)."""
    version = str((getattr(result, "extra", None) or {}).get("Version", ""))
    return 17 + 4 * int(version) if version.isdigit() and 1 <= int(version) <= 40 else None


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


def _corners(position: object, to_full: ToFull) -> tuple[Point, Point, Point, Point]:
    names = ("top_left", "top_right", "bottom_right", "bottom_left")
    xs = np.array([getattr(position, name).x for name in names], np.float32)
    ys = np.array([getattr(position, name).y for name in names], np.float32)
    if callable(to_full):
        xs, ys = to_full(xs, ys)
    else:
        scale, dx, dy = to_full
        xs, ys = xs * scale + dx, ys * scale + dy
    points = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    return (points[0], points[1], points[2], points[3])


def _box(corners: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    return (
        int(max(0, corners[:, 0].min() - margin)),
        int(max(0, corners[:, 1].min() - margin)),
        int(min(w, corners[:, 0].max() + margin + 1)),
        int(min(h, corners[:, 1].max() + margin + 1)),
    )


def _scale_box(box: tuple[int, int, int, int], scale: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    return int(x0 * scale), int(y0 * scale), min(w, int(x1 * scale)), min(h, int(y1 * scale))


def _distinct(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Drop boxes mostly inside an earlier one of similar size (the same code located twice).

    A box inside a much larger one is kept: zxing-cpp sometimes locates a misshapen symbol
    around a code, and the tighter box gets the larger upscale a small code needs.
    """
    kept: list[tuple[int, int, int, int]] = []
    for box in boxes:
        x0, y0, x1, y1 = box
        area = max(1, (x1 - x0) * (y1 - y0))
        if all(_overlap(box, k) < 0.6 * area or _area(k) > 2.5 * area for k in kept):
            kept.append(box)
    return kept


def _area(box: tuple[int, int, int, int]) -> int:
    return max(1, (box[2] - box[0]) * (box[3] - box[1]))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)
