"""Synthetic citizen-card QR payloads and card photos (seeded, deterministic) for tests and benchmarks.

Payloads look like real CCCD / căn cước QR texts: 12-digit ID, optional 9-digit old ID, a
Vietnamese name and address with diacritics, dates, 110-180 UTF-8 bytes (QR version 7-9 at
error level M). The people are invented. Photos come from ``idstation.agent.sim.scene``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from idstation.agent.sim.scene import SceneParams, random_params, render_scene

__all__ = ["SyntheticPhoto", "random_payload", "synthetic_photos", "synthetic_scenes"]

_SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô")
_MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Thị Mỹ", "Xuân", "Bảo")
_GIVEN = ("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hạnh", "Hùng", "Hương", "Khánh", "Linh", "Loan", "Nhung")
_STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Điện Biên Phủ", "Lý Thường Kiệt", "Hùng Vương")
_WARDS = ("Phường Tân Định", "Phường Bến Nghé", "Xã Ea Tiêu", "Phường Hàng Bạc", "Xã Phước Kiển", "Thị trấn Đông Anh")
_DISTRICTS = ("Quận 1", "Quận Hoàn Kiếm", "Huyện Krông Ana", "Huyện Nhà Bè", "Thành phố Thủ Đức", "Huyện Đông Anh")
_PROVINCES = ("Hà Nội", "TP. Hồ Chí Minh", "Đắk Lắk", "Thừa Thiên Huế", "Quảng Ngãi", "Bà Rịa - Vũng Tàu")


@dataclass(frozen=True, slots=True)
class SyntheticPhoto:
    """One generated card photo and the exact text its QR holds."""

    text: str
    image: np.ndarray
    params: SceneParams


def random_payload(rng: np.random.Generator, min_bytes: int = 110, max_bytes: int = 180) -> str:
    """A realistic 7-field citizen QR payload of ``min_bytes``..``max_bytes`` UTF-8 bytes."""
    for _ in range(200):
        text = _one_payload(rng)
        if min_bytes <= len(text.encode("utf-8")) <= max_bytes:
            return text
    raise RuntimeError("payload generator could not meet the byte range")  # pragma: no cover


def _pick(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    return items[int(rng.integers(0, len(items)))]


def _one_payload(rng: np.random.Generator) -> str:
    dob = dt.date(1940, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 66)))
    issued = dt.date(2021, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 5)))
    gender = "Nữ" if rng.random() < 0.5 else "Nam"
    name = f"{_pick(rng, _SURNAMES)} {_pick(rng, _MIDDLE)} {_pick(rng, _GIVEN)}".upper()
    if rng.random() < 0.5:
        name = name.title()
    address = (
        f"Số {int(rng.integers(1, 400))} {_pick(rng, _STREETS)}, Tổ {int(rng.integers(1, 30))}, "
        f"{_pick(rng, _WARDS)}, {_pick(rng, _DISTRICTS)}, {_pick(rng, _PROVINCES)}"
    )
    id12 = f"0{int(rng.integers(1, 97)):02d}{int(gender == 'Nữ') + 2 * (dob.year >= 2000)}{dob.year % 100:02d}"
    id12 += f"{int(rng.integers(0, 10**6)):06d}"
    old = f"{int(rng.integers(0, 10**9)):09d}" if rng.random() < 0.6 else ""
    fields = [id12, old, name, dob.strftime("%d%m%Y"), gender, address, issued.strftime("%d%m%Y")]
    if rng.random() < 0.15:
        fields.append("")  # some cards end with an extra empty field
    return "|".join(fields)


def synthetic_photos(
    count: int, seed: int = 2024, width: int = 1280, height: int = 960, hard: float = 1.0
) -> Iterator[SyntheticPhoto]:
    """``count`` card photos with varied conditions (tilt up to 35°, blur, JPEG q40, dim, glare, small codes)."""
    for text, params in synthetic_scenes(count, seed, width, height, hard):
        yield SyntheticPhoto(text=text, image=render_scene(text, params), params=params)


def synthetic_scenes(
    count: int, seed: int = 2024, width: int = 1280, height: int = 960, hard: float = 1.0
) -> Iterator[tuple[str, SceneParams]]:
    """The payloads and scene parameters of ``synthetic_photos`` without rendering them."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        text = random_payload(rng)
        yield text, random_params(rng, width=width, height=height, hard=hard)
