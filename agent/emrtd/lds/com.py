"""EF.COM (ICAO 9303-10 §4.6.1): ``60 { 5F01 LDS version, 5F36 Unicode version, 5C tag list }``."""

from __future__ import annotations

from dataclasses import dataclass

from idstation.agent.emrtd import tlv
from idstation.agent.errors import ParseError, TlvError

TAG_COM = 0x60
TAG_LDS_VERSION = 0x5F01
TAG_UNICODE_VERSION = 0x5F36
TAG_LIST = 0x5C
DG_TAGS = {
    0x61: 1, 0x75: 2, 0x63: 3, 0x76: 4, 0x65: 5, 0x66: 6, 0x67: 7, 0x68: 8,
    0x69: 9, 0x6A: 10, 0x6B: 11, 0x6C: 12, 0x6D: 13, 0x6E: 14, 0x6F: 15, 0x70: 16,
}  # fmt: skip
TAG_FOR_DG = {n: tag for tag, n in DG_TAGS.items()}


@dataclass(frozen=True, slots=True)
class Com:
    lds_version: str  # "1.7"
    unicode_version: str  # "4.0.0"
    tags: tuple[int, ...]
    data_groups: tuple[int, ...]  # DG numbers of the tags we know


def _version(raw: bytes, parts: int, what: str) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ParseError(f"EF.COM {what} is not ASCII") from exc
    if len(text) != parts * 2 or not text.isdigit():
        raise ParseError(f"EF.COM {what} has the wrong form")
    return ".".join(str(int(text[i : i + 2])) for i in range(0, len(text), 2))


def parse_com(data: bytes) -> Com:
    outer = tlv.decode(bytes(data), TAG_COM)
    children = {child.tag: child.value for child in outer.children()}
    if TAG_LIST not in children:
        raise TlvError("EF.COM has no tag list (5C)")
    lds = _version(children[TAG_LDS_VERSION], 2, "LDS version") if TAG_LDS_VERSION in children else ""
    uni = _version(children[TAG_UNICODE_VERSION], 3, "Unicode version") if TAG_UNICODE_VERSION in children else ""
    tags = tuple(children[TAG_LIST])
    return Com(lds, uni, tags, tuple(DG_TAGS[t] for t in tags if t in DG_TAGS))


def encode_com(data_groups: list[int], lds_version: str = "0107", unicode_version: str = "040000") -> bytes:
    """EF.COM listing ``data_groups`` (numbers)."""
    body = tlv.encode(TAG_LDS_VERSION, lds_version.encode("ascii"))
    body += tlv.encode(TAG_UNICODE_VERSION, unicode_version.encode("ascii"))
    body += tlv.encode(TAG_LIST, bytes(TAG_FOR_DG[n] for n in data_groups))
    return tlv.encode(TAG_COM, body)
