"""Strict DER, walked by offsets: the fast paths' reader (EF.SOD, DG13; issue 13).

A fast path reads the usual shape of a file without building objects, and raises
:class:`NotUsual` for anything else, so that the general parser judges it. Only single-byte tags
and minimal definite lengths up to three bytes are read here; anything else is "not usual".
"""

from __future__ import annotations

__all__ = ["Item", "NotUsual", "der_items"]

Item = tuple[int, int, int, int]  # tag byte, TLV start, value start, value end


class NotUsual(Exception):
    """Not the usual shape: the general parser decides (never an error of ours)."""


def der_items(data: bytes, start: int, end: int) -> list[Item]:
    """The DER TLVs filling ``data[start:end]``: (tag byte, TLV start, value start, value end)."""
    out = []
    pos = start
    while pos < end:
        if pos + 2 > end:
            raise NotUsual
        tag, first = data[pos], data[pos + 1]
        if tag & 0x1F == 0x1F:
            raise NotUsual  # multi-byte tags: none in the usual shape
        head = pos + 2
        if first < 0x80:
            length = first
        elif first in (0x81, 0x82, 0x83):
            count = first - 0x80
            if head + count > end:
                raise NotUsual
            length = int.from_bytes(data[head : head + count], "big")
            if length < (0x80 if count == 1 else 1 << (8 * (count - 1))):
                raise NotUsual  # not the minimal length: DER only
            head += count
        else:
            raise NotUsual
        if head + length > end:
            raise NotUsual
        out.append((tag, pos, head, head + length))
        pos = head + length
    return out
