"""Synthetic photos of a citizen card lying under the box's camera.

Renders, deterministically from a seed, a grayscale frame of an ID card (light background with a
fine pattern, a photo, lines of print, the QR code) placed on a desk, seen by a pinhole camera
at a tilt, then degraded like a cheap camera: defocus or motion blur, low light with sensor
noise, a glare spot, an illumination gradient, JPEG compression. The QR is rendered by segno in
byte mode, UTF-8, without an ECI marker, like real cards.

Only numpy and segno are needed; pillow is used lazily for JPEG compression (skipped without it).
Both the simulated camera and the project's test/benchmark image sets use this module.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["SceneParams", "qr_modules", "random_params", "render_scene"]

CARD_MM = (85.6, 54.0)  # ISO/IEC 7810 ID-1


@dataclass(frozen=True, slots=True)
class SceneParams:
    """How one synthetic frame is made. Angles in degrees, sizes in output pixels."""

    width: int = 1280
    height: int = 960
    ppm: float = 5.0  # pixels per QR module at the code's centre
    tilt: float = 0.0  # out-of-plane tilt of the card
    tilt_axis: float = 0.0  # direction of the tilt axis in the card plane
    roll: float = 0.0  # in-plane rotation
    qr_x: float = 0.5  # QR centre, fraction of the width
    qr_y: float = 0.5
    back_side: bool = False  # căn cước (QR on the back, left) vs CCCD (front, right)
    defocus: float = 0.6  # Gaussian sigma in pixels
    motion: float = 0.0  # motion blur length in pixels
    motion_angle: float = 0.0
    light: float = 1.0  # exposure gain (0.25 = dim)
    noise: float = 2.0  # sensor noise sigma (grey levels, before gain)
    glare: float = 0.0  # glare spot strength (0..1.5)
    glare_x: float = 0.5
    glare_y: float = 0.5
    gradient: float = 0.15  # illumination falloff across the frame
    jpeg_quality: int | None = None
    seed: int = 0


def qr_modules(text: str | None, error: str = "M") -> np.ndarray:
    """The QR code's module matrix (True = dark), byte mode UTF-8, no ECI; quiet zone excluded."""
    import segno

    if text is None:
        return np.zeros((0, 0), dtype=bool)
    qr = segno.make_qr(text.encode("utf-8"), error=error, mode="byte", boost_error=False)
    return np.array(qr.matrix, dtype=bool)


def render_scene(text: str | None, params: SceneParams) -> np.ndarray:
    """A grayscale uint8 frame (height x width) showing a card with ``text`` as its QR code.

    ``text`` None renders the empty reader (desk only). Deterministic for equal arguments.
    """
    rng = np.random.default_rng(params.seed)
    modules = qr_modules(text)
    n = modules.shape[0] if modules.size else 49
    tex_scale = max(2.0, params.ppm * 1.6)  # texture pixels per module: enough to not alias
    qr_mm = n * 0.32  # a version 7-9 code is about 15-17 mm wide on the card
    px_per_mm = tex_scale / 0.32
    card = _card_texture(modules, px_per_mm, qr_mm, params.back_side, rng)
    frame = _desk(params.width, params.height, rng)
    if text is not None:
        qr_tex_center = _qr_center_tex(card.shape, px_per_mm, qr_mm, params.back_side)
        homography = _homography(card.shape, qr_tex_center, tex_scale, params)
        frame = _warp_onto(frame, card, homography)
    return _degrade(frame, params, rng)


def random_params(rng: np.random.Generator, width: int = 1280, height: int = 960, hard: float = 1.0) -> SceneParams:
    """Draw varied card-photo conditions: tilt up to 35°, blur, low light, glare, small codes.

    ``hard`` scales how much of the set is degraded (0 = clean frames).
    """
    small = rng.random() < 0.3 * hard
    ppm = rng.uniform(2.0, 3.0) if small else rng.uniform(3.0, 7.0)
    ppm *= width / 1280
    low = rng.random() < 0.25 * hard
    motion = rng.uniform(1.0, 3.0) if rng.random() < 0.15 * hard else 0.0
    return SceneParams(
        width=width,
        height=height,
        ppm=ppm,
        tilt=rng.uniform(0, 35) * min(1.0, hard),
        tilt_axis=rng.uniform(0, 180),
        roll=rng.uniform(-180, 180),
        qr_x=rng.uniform(0.3, 0.7),
        qr_y=rng.uniform(0.3, 0.7),
        back_side=bool(rng.random() < 0.5),
        defocus=rng.uniform(0.3, 0.5 + 0.6 * hard),
        motion=motion,
        motion_angle=rng.uniform(0, 180),
        light=rng.uniform(0.2, 0.4) if low else rng.uniform(0.75, 1.1),
        noise=rng.uniform(1.0, 3.0),
        glare=rng.uniform(0.3, 0.9) if rng.random() < 0.25 * hard else 0.0,
        glare_x=rng.uniform(0.3, 0.7),
        glare_y=rng.uniform(0.3, 0.7),
        gradient=rng.uniform(0.0, 0.35),
        jpeg_quality=40 if rng.random() < 0.5 * hard else None,
        seed=int(rng.integers(0, 2**31)),
    )


def scaled(params: SceneParams, factor: float) -> SceneParams:
    """The same scene seen by a sensor ``factor`` times the size (e.g. main vs lores stream)."""
    return replace(
        params,
        width=round(params.width * factor),
        height=round(params.height * factor),
        ppm=params.ppm * factor,
        defocus=params.defocus * factor,
        motion=params.motion * factor,
    )


# --- the card -------------------------------------------------------------------------------------


def _qr_center_tex(shape: tuple[int, ...], px_per_mm: float, qr_mm: float, back: bool) -> tuple[float, float]:
    _height, width = shape[:2]
    margin = 4.0 * px_per_mm + qr_mm * px_per_mm / 2
    x = margin if back else width - margin
    return x, margin


def _card_texture(
    modules: np.ndarray, px_per_mm: float, qr_mm: float, back: bool, rng: np.random.Generator
) -> np.ndarray:
    w, h = round(CARD_MM[0] * px_per_mm), round(CARD_MM[1] * px_per_mm)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(1.2, 2.5) * px_per_mm
    base = 222 + 10 * np.sin((xx + 0.6 * yy) * (2 * math.pi / period)) + rng.normal(0, 3, (h, w))
    card = base.astype(np.float32)
    cx, cy = _qr_center_tex((h, w), px_per_mm, qr_mm, back)
    side = qr_mm * px_per_mm
    qx0, qy0 = round(cx - side / 2), round(cy - side / 2)
    # print: a photo block and lines of "glyphs" away from the QR
    photo_x = round((58 if back else 4) * px_per_mm)
    if not back:
        pw, ph = round(20 * px_per_mm), round(26 * px_per_mm)
        py0 = round(22 * px_per_mm)
        card[py0 : py0 + ph, photo_x : photo_x + pw] = rng.uniform(70, 150) + rng.normal(0, 18, (ph, pw))
    text_x0 = round((4 if back else 27) * px_per_mm)
    text_x1 = round((84 if back else 82) * px_per_mm)
    for line in range(6 if back else 7):
        ty = round((26 + line * 4.0) * px_per_mm) if back else round((24 + line * 4.0) * px_per_mm)
        _glyph_line(card, ty, (text_x0, text_x1), px_per_mm, rng)
    if modules.size:
        quiet = round(1.5 * side / modules.shape[0])
        card[qy0 - quiet : qy0 + round(side) + quiet, qx0 - quiet : qx0 + round(side) + quiet] = 240
        qr = _upsample_modules(modules, round(side))
        region = card[qy0 : qy0 + qr.shape[0], qx0 : qx0 + qr.shape[1]]
        region[qr] = 25 + rng.normal(0, 3)
    out: np.ndarray = np.clip(card, 0, 255)
    return out


def _glyph_line(card: np.ndarray, ty: int, span: tuple[int, int], px_per_mm: float, rng: np.random.Generator) -> None:
    x0, x1 = span
    glyph_h = max(2, round(1.8 * px_per_mm))
    x = x0 + round(rng.uniform(0, 10) * px_per_mm)
    end = min(x1, x + round(rng.uniform(25, 55) * px_per_mm))
    ink = rng.uniform(30, 90)
    while x < end and ty + glyph_h < card.shape[0]:
        gw = max(1, round(rng.uniform(0.6, 1.4) * px_per_mm))
        stroke = rng.random((glyph_h, gw)) < 0.45
        card[ty : ty + glyph_h, x : x + gw][stroke] = ink
        x += gw + max(1, round(rng.uniform(0.2, 1.2) * px_per_mm))


def _upsample_modules(modules: np.ndarray, side: int) -> np.ndarray:
    n = modules.shape[0]
    idx = np.minimum((np.arange(side) * n) // side, n - 1)
    return modules[np.ix_(idx, idx)]


# --- geometry -------------------------------------------------------------------------------------


def _homography(shape: tuple[int, ...], qr_center: tuple[float, float], tex_scale: float, p: SceneParams) -> np.ndarray:
    """3x3 matrix mapping card texture pixels to frame pixels (pinhole camera, tilted card)."""
    h, w = shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    # card plane coordinates in "module" units centred on the QR
    local = (corners - np.array(qr_center)) / tex_scale
    tilt, axis, roll = (math.radians(v) for v in (p.tilt, p.tilt_axis, p.roll))
    rot = _axis_rotation(np.array([math.cos(axis), math.sin(axis), 0.0]), tilt) @ _axis_rotation(
        np.array([0.0, 0.0, 1.0]), roll
    )
    distance = 120.0  # modules; focal length chosen so the QR centre gets ``ppm`` px per module
    pts3 = np.c_[local, np.zeros(4)] @ rot.T + np.array([0.0, 0.0, distance])
    focal = p.ppm * distance
    proj = focal * pts3[:, :2] / pts3[:, 2:3]
    proj += np.array([p.qr_x * p.width, p.qr_y * p.height])
    return _fit_homography(corners, proj)


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    x, y, z = axis / np.linalg.norm(axis)
    c, s = math.cos(angle), math.sin(angle)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    out: np.ndarray = np.eye(3) + s * k + (1 - c) * (k @ k)
    return out


def _fit_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    rows = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.array(rows))
    out: np.ndarray = vt[-1].reshape(3, 3) / vt[-1, -1]
    return out


def _warp_onto(frame: np.ndarray, texture: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Paste ``texture`` into ``frame`` through ``homography`` (inverse mapping, bilinear)."""
    h, w = frame.shape
    inv = np.linalg.inv(homography)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
    sx = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den
    sy = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den
    th, tw = texture.shape
    inside = (sx >= 0) & (sy >= 0) & (sx < tw - 1) & (sy < th - 1) & (den > 0)
    x0 = np.floor(sx[inside]).astype(np.int32)
    y0 = np.floor(sy[inside]).astype(np.int32)
    fx, fy = sx[inside] - x0, sy[inside] - y0
    top = texture[y0, x0] * (1 - fx) + texture[y0, x0 + 1] * fx
    bottom = texture[y0 + 1, x0] * (1 - fx) + texture[y0 + 1, x0 + 1] * fx
    out = frame.astype(np.float32)
    out[inside] = top * (1 - fy) + bottom * fy
    return out


def _desk(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.uniform(60, 140, (6, 8))
    ys = np.linspace(0, 5, height)[:, None]
    xs = np.linspace(0, 7, width)[None, :]
    y0, x0 = np.floor(ys).astype(int).clip(0, 4), np.floor(xs).astype(int).clip(0, 6)
    fy, fx = ys - y0, xs - x0
    desk = (
        coarse[y0, x0] * (1 - fx) * (1 - fy)
        + coarse[y0, x0 + 1] * fx * (1 - fy)
        + coarse[y0 + 1, x0] * (1 - fx) * fy
        + coarse[y0 + 1, x0 + 1] * fx * fy
    )
    out: np.ndarray = (desk + rng.normal(0, 4, (height, width))).astype(np.float32)
    return out


# --- camera ---------------------------------------------------------------------------------------


def _degrade(frame: np.ndarray, p: SceneParams, rng: np.random.Generator) -> np.ndarray:
    h, w = frame.shape
    ys, xs = np.ogrid[0:h, 0:w]
    if p.gradient:
        r2 = ((xs / w - 0.5) ** 2 + (ys / h - 0.5) ** 2) * 2
        frame = frame * (1 - p.gradient * r2)
    if p.glare:
        gx, gy, radius = p.glare_x * w, p.glare_y * h, 0.08 * max(w, h)
        spot = np.exp(-((xs - gx) ** 2 + (ys - gy) ** 2) / (2 * radius**2))
        frame = frame + 255 * p.glare * spot * (1 - frame / 400)
    frame = _gaussian_blur(frame, p.defocus)
    if p.motion >= 1.0:
        frame = _motion_blur(frame, p.motion, p.motion_angle)
    frame = frame * p.light + rng.normal(0, p.noise, frame.shape) * math.sqrt(max(p.light, 0.05))
    out = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    if p.jpeg_quality is not None:
        out = _jpeg(out, p.jpeg_quality)
    return out


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.2:
        return img
    radius = max(1, math.ceil(3 * sigma))
    k = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    k /= k.sum()
    padded = np.pad(img, radius, mode="edge")
    tmp = sum(k[i] * padded[:, i : i + img.shape[1]] for i in range(len(k)))
    out: np.ndarray = sum(k[i] * tmp[i : i + img.shape[0], :] for i in range(len(k)))
    return out


def _motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    steps = max(2, round(length) + 1)
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    acc = np.zeros_like(img)
    for t in np.linspace(-length / 2, length / 2, steps):
        acc += np.roll(img, (round(t * dy), round(t * dx)), axis=(0, 1))
    return acc / steps


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:  # pillow is the optional "vision" extra
        return img
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("L"))
