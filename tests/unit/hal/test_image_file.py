"""Image files are loaded within a memory budget decided from the header, before any pixel is decoded."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from idstation.hal.errors import CameraError
from idstation.hal.image_file import MAX_PIXELS, ImageTooLarge, load_gray


def grey_png(path: Path, width: int, height: int) -> Path:
    """A grey PNG written row by row (the test never holds the raster): 13,000² compresses to ~190 KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# VmHWM is this process image's own peak (ru_maxrss would carry the forking parent's size across exec).
PEAK = """
import sys
from pathlib import Path
from idstation.hal.image_file import ImageTooLarge, load_gray
try:
    load_gray(Path(sys.argv[1]))
    print("loaded")
except ImageTooLarge:
    print("refused")
status = Path("/proc/self/status").read_text()
print(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) // 1024)
"""


def test_a_13000_pixel_square_png_is_refused_from_its_header_in_little_memory(tmp_path: Path) -> None:
    path = grey_png(tmp_path / "bomb.png", 13_000, 13_000)
    assert path.stat().st_size < 300_000
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    verdict, peak_mb = done.stdout.split()
    assert verdict == "refused"
    assert int(peak_mb) < 120  # the service's MemoryMax is 200 MB; loading it whole took 705 MB


def test_the_refusal_is_a_typed_camera_error_naming_the_size(tmp_path: Path) -> None:
    with pytest.raises(ImageTooLarge, match="13000 x 13000") as caught:
        load_gray(grey_png(tmp_path / "bomb.png", 13_000, 13_000))
    assert isinstance(caught.value, CameraError)


def test_a_large_qr_photo_is_reduced_and_still_decodes(tmp_path: Path) -> None:
    import segno
    from idstation.agent.qr.decode import QrDecoder

    path = tmp_path / "qr.png"
    segno.make("001090123456|012345678|Nguyen Van A|01011990|Nam|Ha Noi|15042021", error="m").save(
        str(path), scale=110, border=4
    )
    gray = load_gray(path)
    assert gray.size <= MAX_PIXELS
    hit = QrDecoder().decode(gray)
    assert hit is not None
    assert hit.text.startswith("001090123456|")


def test_not_an_image_is_a_camera_error(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"not a png")
    with pytest.raises(CameraError):
        load_gray(path)
