"""Image files as grayscale arrays, with memory bounded by the header before any pixel is decoded.

A PNG of 13,000 x 13,000 grey pixels compresses to 164 KB and decodes to 169 MB (705 MB with the
conversions a naive loader makes), past the box service's ``MemoryMax=200M``. ``load_gray`` reads
the size from the header first and:

- refuses (``ImageTooLarge``) a file whose decoded raster (width x height x bands) would exceed
  ``MAX_RASTER_BYTES``, after JPEG's free draft-mode reduction (1/2, 1/4, 1/8 while decoding);
- reduces what it decoded to at most ``MAX_PIXELS`` (integer box reduction), which keeps any card
  QR code decodable: a citizen-card QR spanning a tenth of a 12 MP photo still has more than
  6 pixels per module after the reduction.

The peak is then about ``MAX_RASTER_BYTES`` + ``MAX_PIXELS`` bytes whatever the file claims.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from idstation.hal.errors import CameraError

MAX_PIXELS = 12_000_000  # what the QR decoder is handed at most (12 MP: a phone photo)
MAX_RASTER_BYTES = 48 * 1024 * 1024  # the decoded file before reduction (e.g. 16 MP RGB)


class ImageTooLarge(CameraError):
    """An image file whose pixels would not fit the box's memory budget (refused from its header)."""


def load_gray(path: Path, *, max_pixels: int = MAX_PIXELS, max_raster_bytes: int = MAX_RASTER_BYTES) -> np.ndarray:
    """An image file as a 2-D uint8 grayscale array of at most ``max_pixels``.

    ``CameraError`` when it cannot be read, ``ImageTooLarge`` when its header announces more than
    the memory budget allows.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - depends on the vision extra
        raise CameraError("reading image files needs pillow (pip install idstation[vision])") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            img = Image.open(path)
        with img:
            _draft(img, max_pixels)
            width, height = img.size
            raster = width * height * max(len(img.getbands()), 1)
            if raster > max_raster_bytes:
                raise ImageTooLarge(
                    f"image {path.name} is {width} x {height} pixels: more than the {max_raster_bytes // 2**20} MB"
                    " a box decodes"
                )
            gray = img.convert("L")
            factor = math.ceil(math.sqrt(width * height / max_pixels)) if width * height > max_pixels else 1
            if factor > 1:
                gray = gray.reduce(factor)
            return np.asarray(gray, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise CameraError(f"no such image file: {path}") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image {path.name} claims more pixels than a box decodes") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CameraError(f"cannot read image {path.name}: {type(exc).__name__}") from None


def _draft(img: object, max_pixels: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale when it is larger than ``max_pixels`` (no cost).

    PIL picks the largest scale that keeps at least the requested size, so what follows still
    has ``max_pixels`` or more to reduce from.
    """
    width, height = img.size  # type: ignore[attr-defined]
    if getattr(img, "format", None) != "JPEG" or width * height <= max_pixels:
        return
    factor = math.sqrt(width * height / max_pixels)
    img.draft("L", (math.ceil(width / factor), math.ceil(height / factor)))  # type: ignore[attr-defined]
