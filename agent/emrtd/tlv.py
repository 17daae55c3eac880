"""BER-TLV as ICAO 9303-10 §4 and ISO 7816-4 §5.2 use it: pure decode/encode.

Tags are kept as the integer of their raw bytes (``0x5F1F``, ``0x7F49``), so a tag compares the
way the spec prints it. Lengths: short form and long forms 81/82/83/84. Indefinite length is not
allowed in the LDS and is rejected. Every malformed input raises ``TlvError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from idstation.agent.errors import TlvError

MAX_LENGTH_BYTES = 4


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        first = self.tag.to_bytes((self.tag.bit_length() + 7) // 8 or 1, "big")[0]
        return bool(first & 0x20)

    def children(self) -> list[Tlv]:
        """Decode the value as a sequence of TLVs (for constructed objects)."""
        return decode_all(self.value)

    def find(self, tag: int) -> Tlv | None:
        """First direct child with ``tag``."""
        return next((c for c in self.children() if c.tag == tag), None)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)


def read_tag(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return (tag, next position)."""
    if pos >= len(data):
        raise TlvError("TLV truncated: no tag")
    first = data[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        for count in range(3):
            if pos >= len(data):
                raise TlvError("TLV truncated inside a multi-byte tag")
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if not byte & 0x80:
                break
            if count == 2:
                raise TlvError("TLV tag longer than 4 bytes")
    return tag, pos


def read_length(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return (length, next position)."""
    if pos >= len(data):
        raise TlvError("TLV truncated: no length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0:
        raise TlvError("indefinite TLV length is not allowed")
    if count > MAX_LENGTH_BYTES:
        raise TlvError(f"TLV length field of {count} bytes is too long")
    if pos + count > len(data):
        raise TlvError("TLV truncated inside the length")
    return int.from_bytes(bytes(data[pos : pos + count]), "big"), pos + count


def decode_one(data: bytes | memoryview, pos: int = 0) -> tuple[Tlv, int]:
    """Decode one TLV at ``pos``; return it and the position after it."""
    if 0 <= pos < len(data) - 1 and data[pos] & 0x1F != 0x1F and data[pos + 1] < 0x80:  # the usual case, inline
        end = pos + 2 + data[pos + 1]
        if end <= len(data):
            return Tlv(data[pos], bytes(data[pos + 2 : end])), end
    tag, pos = read_tag(data, pos)
    length, pos = read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TlvError(f"TLV {tag:X} claims {length} bytes, {len(data) - pos} present")
    return Tlv(tag, bytes(data[pos:end])), end


def iter_tlv(data: bytes | memoryview) -> Iterator[Tlv]:
    pos = 0
    while pos < len(data):
        item, pos = decode_one(data, pos)
        yield item


def decode_all(data: bytes | memoryview) -> list[Tlv]:
    """Decode a concatenation of TLVs (the whole input must be consumed): ``list(iter_tlv(data))``,
    with decode_one's usual case inlined (DG13 is some 50 TLVs, parsed for every identity event)."""
    out = []
    pos, size = 0, len(data)
    while pos < size:
        if pos < size - 1 and data[pos] & 0x1F != 0x1F and data[pos + 1] < 0x80 and pos + 2 + data[pos + 1] <= size:
            end = pos + 2 + data[pos + 1]
            out.append(Tlv(data[pos], bytes(data[pos + 2 : end])))
            pos = end
        else:
            item, pos = decode_one(data, pos)
            out.append(item)
    return out


def decode(data: bytes | memoryview, expected_tag: int | None = None) -> Tlv:
    """Decode exactly one TLV filling ``data`` (trailing bytes are an error, except 00/FF padding)."""
    item, end = decode_one(data, 0)
    rest = bytes(data[end:])
    if rest.strip(b"\x00") and rest.strip(b"\xff"):
        raise TlvError(f"{len(rest)} unexpected bytes after TLV {item.tag:X}")
    if expected_tag is not None and item.tag != expected_tag:
        raise TlvError(f"expected tag {expected_tag:X}, found {item.tag:X}")
    return item


def check_depth(data: bytes | memoryview, limit: int) -> None:
    """``TlvError`` when constructed TLVs in ``data`` nest deeper than ``limit`` (iterative, no recursion).

    Generic ASN.1 libraries recurse once per nesting level; a chip's file can nest thousands of
    SEQUENCEs in a few kilobytes. Checked before such a library sees the bytes. Malformed
    structure below the top level is left to the parser (only the nesting is bounded here).
    The walk reads tags and lengths as :func:`read_tag` and :func:`read_length` do, inlined: it
    runs on every EF.SOD the centre re-checks (issue 13).
    """
    size = len(data)
    ends = [size]  # end offsets of the constructed TLVs we are inside
    top = size
    pos = 0
    while pos < size:
        while pos >= top and len(ends) > 1:
            ends.pop()
            top = ends[-1]
        first = data[pos]
        at = pos + 1
        if first & 0x1F == 0x1F:  # a multi-byte tag (rare): as read_tag
            try:
                _tag, at = read_tag(data, pos)
            except TlvError:
                return
        if at >= size:
            return
        length = data[at]
        at += 1
        if length >= 0x80:
            count = length & 0x7F
            if count == 0 or count > MAX_LENGTH_BYTES or at + count > size:
                return
            length = int.from_bytes(data[at : at + count], "big")
            at += count
        end = at + length
        if first & 0x20 and end <= top:
            ends.append(end)
            top = end
            if len(ends) - 1 > limit:
                raise TlvError(f"TLV nesting deeper than {limit} levels")
            pos = at
        else:
            pos = end


def total_length(header: bytes) -> int:
    """Total size of the TLV whose first bytes are ``header`` (to size a file from its first read)."""
    _tag, pos = read_tag(header, 0)
    length, pos = read_length(header, pos)
    return pos + length


def encode_length(length: int) -> bytes:
    if length < 0:
        raise TypeError("negative TLV length")
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(raw) > MAX_LENGTH_BYTES:
        raise TypeError("TLV value too long")
    return bytes([0x80 | len(raw)]) + raw


def encode_tag(tag: int) -> bytes:
    return tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")


def encode(tag: int, value: bytes) -> bytes:
    if 0 <= tag <= 0xFF and len(value) < 0x80:  # one tag byte, short length: as below, without the calls
        return bytes((tag, len(value))) + value
    return encode_tag(tag) + encode_length(len(value)) + value
