"""Small synthetic face portraits (JPEG) for virtual cards: drawn with Pillow, seeded.

Without Pillow (it is an optional dependency) a fixed tiny JPEG stands in, so profiles still build.
"""

from __future__ import annotations

import io
import random

WIDTH, HEIGHT = 96, 120
# an 8x8 grey baseline JPEG, used when Pillow is not installed
FALLBACK_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912"
    "130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b0800"
    "08000801011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002"
    "010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f024"
    "33627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63646566676869"
    "6a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4"
    "c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbfc"
    "a28a2800ffd9"
)


def face_jpeg(seed: int, gender: str = "Nam") -> bytes:
    """A 96x120 portrait-like JPEG, the same for the same seed."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return FALLBACK_JPEG
    rng = random.Random(seed * 7919 + 17)
    image = Image.new("RGB", (WIDTH, HEIGHT), (236, 240, 244))
    draw = ImageDraw.Draw(image)
    skin = (rng.randint(200, 240), rng.randint(160, 200), rng.randint(120, 160))
    hair = (rng.randint(10, 50),) * 3
    draw.rectangle((18, 100, 78, 120), fill=(rng.randint(30, 200), rng.randint(30, 120), rng.randint(60, 200)))
    draw.ellipse((22, 18, 74, 86), fill=skin)
    if gender == "Nữ":
        draw.rectangle((18, 30, 26, 100), fill=hair)
        draw.rectangle((70, 30, 78, 100), fill=hair)
    draw.chord((20, 10, 76, 56), 180, 360, fill=hair)
    eye_y = 46 + rng.randint(-2, 2)
    for x in (36, 56):
        draw.ellipse((x - 3, eye_y - 2, x + 3, eye_y + 2), fill=(30, 30, 30))
    draw.line((48, 50, 46, 62), fill=(150, 110, 90), width=1)
    draw.arc((38, 60, 58, 74), 20, 160, fill=(150, 60, 60), width=2)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()
