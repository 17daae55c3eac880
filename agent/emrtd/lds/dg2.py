"""EF.DG2: the face (ICAO 9303-10 §4.7.2, ISO/IEC 19794-5:2005 record inside a CBEFF template).

``75 { 7F61 { 02 count, 7F60 { A1 header, 5F2E|7F2E biometric data block } ... } }``. The data
block is an ISO 19794-5 facial record (``FAC\\0``, version, length, count, facial record header,
feature points, image information) followed by the image. We extract the image bytes and report
``image/jpeg`` or ``image/jp2``; we never decode the image (no image library on this path).
"""

from __future__ import annotations

from dataclasses import dataclass

from idstation.agent.emrtd import tlv
from idstation.agent.errors import ParseError, TlvError

TAG_DG2 = 0x75
TAG_BIT_GROUP = 0x7F61
TAG_BIT = 0x7F60
TAG_BDB = 0x5F2E
TAG_BDB_ENCIPHERED = 0x7F2E
JPEG_MAGIC = b"\xff\xd8\xff"
JP2_MAGIC = b"\x00\x00\x00\x0cjP  "
J2K_MAGIC = b"\xff\x4f\xff\x51"
_GENERAL_HEADER = 14  # "FAC\0" + version(4) + length(4) + number of images(2)
_FACE_HEADER = 20
_FEATURE_POINT = 8
_IMAGE_INFO = 12


@dataclass(frozen=True, slots=True)
class FaceImage:
    mime: str  # "image/jpeg" or "image/jp2"
    data: bytes
    width: int
    height: int

    def __repr__(self) -> str:
        return f"FaceImage(mime={self.mime!r}, {len(self.data)} bytes, {self.width}x{self.height})"


@dataclass(frozen=True, slots=True)
class Dg2:
    images: tuple[FaceImage, ...]

    @property
    def face(self) -> FaceImage:
        return self.images[0]

    @property
    def mime(self) -> str:
        """MIME type of the first face image."""
        return self.images[0].mime

    @property
    def image(self) -> bytes:
        """Bytes of the first face image (JPEG or JPEG 2000), undecoded."""
        return self.images[0].data

    def __repr__(self) -> str:
        return f"Dg2({len(self.images)} image(s))"


def _mime(data: bytes) -> str | None:
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    if data.startswith((JP2_MAGIC, J2K_MAGIC)):
        return "image/jp2"
    return None


def _face_from_record(block: bytes) -> FaceImage:
    """Image bytes of the first face in an ISO 19794-5 record."""
    if not block.startswith(b"FAC\x00") or len(block) < _GENERAL_HEADER + _FACE_HEADER + _IMAGE_INFO:
        raise ParseError("DG2 biometric data block is not an ISO 19794-5 facial record")
    face = _GENERAL_HEADER
    points = int.from_bytes(block[face + 4 : face + 6], "big")
    info = face + _FACE_HEADER + points * _FEATURE_POINT
    start = info + _IMAGE_INFO
    if start > len(block):
        raise ParseError("DG2 facial record is truncated")
    width = int.from_bytes(block[info + 2 : info + 4], "big")
    height = int.from_bytes(block[info + 4 : info + 6], "big")
    image = block[start:]
    mime = _mime(image)
    if mime is None:  # some issuers miscount the header: look for the image's own signature
        positions = [p for p in (block.find(m, _GENERAL_HEADER) for m in (JPEG_MAGIC, JP2_MAGIC, J2K_MAGIC)) if p > 0]
        if not positions:
            raise ParseError("DG2 image is neither JPEG nor JPEG 2000")
        image = block[min(positions) :]
        mime = _mime(image) or "application/octet-stream"
    return FaceImage(mime, image, width, height)


def parse_dg2(data: bytes) -> Dg2:
    outer = tlv.decode(bytes(data), TAG_DG2)
    group = outer.find(TAG_BIT_GROUP)
    if group is None:
        raise TlvError("DG2 has no biometric information group template (7F61)")
    images = []
    for child in group.children():
        if child.tag != TAG_BIT:
            continue
        block = child.find(TAG_BDB) or child.find(TAG_BDB_ENCIPHERED)
        if block is None:
            raise TlvError("DG2 biometric information template has no data block (5F2E/7F2E)")
        images.append(_face_from_record(block.value))
    if not images:
        raise ParseError("DG2 holds no face")
    return Dg2(tuple(images))


def face_record(image: bytes, width: int, height: int, *, jpeg2000: bool = False) -> bytes:
    """An ISO 19794-5 record holding one full-frontal image (the virtual card's DG2)."""
    info = bytes([1, 1 if jpeg2000 else 0]) + width.to_bytes(2, "big") + height.to_bytes(2, "big")
    info += bytes([1, 2]) + b"\x00\x00" + b"\x00\x00"  # sRGB, digital still camera, device, quality
    header = (_FACE_HEADER + _IMAGE_INFO + len(image)).to_bytes(4, "big") + b"\x00\x00"  # no feature points
    header += b"\x00\x00\x00" + b"\x00\x00\x00" + b"\x00\x00" + b"\x00\x00\x00" + b"\x00\x00\x00"
    face = header + info + image
    return b"FAC\x00" + b"010\x00" + (_GENERAL_HEADER + len(face)).to_bytes(4, "big") + b"\x00\x01" + face


def encode_dg2(image: bytes, width: int, height: int, *, jpeg2000: bool = False) -> bytes:
    """EF.DG2 with one face image (CBEFF header: ICAO header version 0101, face, format 0101/0008)."""
    bht = tlv.encode(0x80, b"\x01\x01") + tlv.encode(0x81, b"\x02") + tlv.encode(0x87, b"\x01\x01")
    bht += tlv.encode(0x88, b"\x00\x08")
    bit = tlv.encode(
        TAG_BIT, tlv.encode(0xA1, bht) + tlv.encode(TAG_BDB, face_record(image, width, height, jpeg2000=jpeg2000))
    )
    return tlv.encode(TAG_DG2, tlv.encode(TAG_BIT_GROUP, tlv.encode(0x02, b"\x01") + bit))
