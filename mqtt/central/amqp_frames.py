"""A decoder for the common AMQP 0-9-1 delivery: Basic.Deliver + content header + body frame(s).

pika turns every received frame into objects (a ``Method`` holding a ``Basic.Deliver``, a
``Header`` holding ``BasicProperties`` and its headers table, a ``Body``), runs them through the
connection's and the channel's dispatch and the channel's content assembler, and a
BlockingChannel queues the result as a pending event: ~21 us of CPU per delivery on this host,
~40 % of it in ``pika.frame.decode_frame``. A listener needs five values of a delivery.

:func:`parse_delivery` reads them straight from the received bytes when, at ``pos``, the buffer
holds a *complete* delivery on ``channel`` in its usual shape (AMQP 0-9-1 §4.2.3 frames, §4.2.6
content: a method frame, a header frame, then body frames whose sizes add up to the header's body
size), and returns None for anything else, so that pika decodes it: partial data, another frame
type, channel, class or method, a frame-end octet other than 0xCE, a field that overruns its
frame or table, trailing bytes, a routing key that is not UTF-8, a property-flags continuation,
a header value of a type pika could fail on or would decode into something other than an
integer where the delivery count is read (``f``, ``d``, ``T``, ``A``, ``F``, unknown types).
Every read is bounded by the buffer and by the enclosing frame; no size is trusted.
tests/unit/mqtt/central/test_amqp_frames.py pins it against pika's own encoder and decoder.
"""

from __future__ import annotations

import functools
import struct

__all__ = ["DELIVERY_COUNT", "FRAME_END", "incomplete_delivery", "parse_delivery"]

FRAME_END = 0xCE
DELIVERY_COUNT = b"x-delivery-count"
_DELIVER = (60 << 16) | 60  # Basic.Deliver: class 60, method 60
_METHOD_HEAD = struct.Struct(">BHII").unpack_from  # type, channel, size, class+method id (11 bytes)
_CONTENT_HEAD = struct.Struct(">BHIHHQH").unpack_from  # type, channel, size, class, weight, body size, flags
_FRAME_HEAD = struct.Struct(">BHI").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U16 = struct.Struct(">H").unpack_from
# the delivery count of the property bytes seen last (a box's events carry the same few): exact,
# since it is a function of those bytes alone; bounded
_COUNTS: dict[bytes, int | None] = {}
_COUNTS_MAX = 256
_UNSEEN = object()
# header field value types pika decodes without failing, and their sizes (S, x: 4-byte length + data)
_FIXED = {ord(k): n for k, n in (("t", 1), ("b", 1), ("B", 1), ("U", 2), ("u", 2), ("s", 2))}
_FIXED.update({ord(k): n for k, n in (("I", 4), ("i", 4), ("L", 8), ("l", 8), ("D", 5), ("V", 0))})
_LONG = frozenset(b"Sx")
# where pika turns a delivery count of that type into the integer the listener reads
_INTEGER = {ord(k): struct.Struct(">" + f).unpack_from for k, f in zip("bBUsuIiLl", "bBhhHiIqq", strict=True)}
_COUNT_KEY = bytes([len(DELIVERY_COUNT)]) + DELIVERY_COUNT  # as a table key: length, then the name
# BasicProperties in flag order (bit 15 down to bit 2): s = short string, o = octet, q = 64-bit, h = headers
_PROPERTIES = tuple(zip(range(15, 1, -1), "sshoossssqssss", strict=True))

Delivered = tuple[bytes, int, bool, str, str, int, bytes, int, int]


def parse_delivery(buf: bytes, pos: int, channel: int) -> Delivered | None:  # noqa: PLR0911, PLR0912 - inline: a call is ~5 % of it
    """(consumer tag, delivery tag, redelivered, exchange, routing key, x-delivery-count (0 when
    absent), body, end offset, frame count) of the delivery at ``buf[pos:]``; None when it is not
    complete there or not in the shape this reads (pika then decodes it)."""
    size = len(buf)
    if pos < 0 or size < pos + 12:
        return None
    kind, number, length, method_id = _METHOD_HEAD(buf, pos)
    end = pos + 7 + length  # the frame-end octet
    if kind != 1 or number != channel or method_id != _DELIVER or end >= size or buf[end] != FRAME_END:
        return None
    tag_end = pos + 12 + buf[pos + 11]
    if tag_end + 10 > end:  # the consumer tag, delivery tag (8), redelivered (1), the exchange's length (1)
        return None
    at = tag_end + 9
    exchange_end = at + 1 + buf[at]
    if exchange_end >= end or exchange_end + 1 + buf[exchange_end] != end:  # overruns the frame, or trailing bytes
        return None
    try:
        exchange = buf[at + 1 : exchange_end].decode()
        routing_key = buf[exchange_end + 1 : end].decode()
    except UnicodeDecodeError:
        return None
    at = end + 1  # the content header frame
    if size < at + 21:
        return None
    kind, number, length, class_id, _weight, body_size, _flags = _CONTENT_HEAD(buf, at)
    end = at + 7 + length
    if kind != 2 or number != channel or class_id != 60 or length < 14 or end >= size or buf[end] != FRAME_END:
        return None
    properties = buf[at + 19 : end]  # property flags, then the properties
    count = _COUNTS.get(properties, _UNSEEN)
    if count is _UNSEEN:
        count = _delivery_count_of(properties)
        if len(_COUNTS) >= _COUNTS_MAX:
            _COUNTS.clear()
        _COUNTS[properties] = count
    if count is None:
        return None
    tag, delivery_tag, redelivered = buf[pos + 12 : tag_end], _U64(buf, tag_end)[0], bool(buf[tag_end + 8] & 1)
    at = end + 1
    if body_size == 0:
        return tag, delivery_tag, redelivered, exchange, routing_key, count, b"", at, 2
    if size >= at + 7:  # the usual case: one body frame
        kind, number, length = _FRAME_HEAD(buf, at)
        end = at + 7 + length
        if length == body_size and kind == 3 and number == channel and end < size and buf[end] == FRAME_END:
            return tag, delivery_tag, redelivered, exchange, routing_key, count, buf[at + 7 : end], end + 1, 3
    body = _body(buf, at, channel, body_size)
    if body is None:
        return None
    return tag, delivery_tag, redelivered, exchange, routing_key, count, body[0], body[1], body[2] + 2


@functools.lru_cache(maxsize=256)
def _shapes(flags: int) -> str:
    """The properties present in ``flags``, in wire order (one letter each, see _PROPERTIES)."""
    return "".join(shape for bit, shape in _PROPERTIES if flags & (1 << bit))


def _delivery_count_of(properties: bytes) -> int | None:
    """The delivery count in a content header's property flags and properties (``int(value or
    0)`` of x-delivery-count, 0 without it); None when they are not all read or not exactly used."""
    (flags,) = _U16(properties, 0)
    if flags & 1:  # a flags continuation
        return None
    at, end, count = 2, len(properties), 0
    for shape in _shapes(flags):
        if shape == "h":
            count, at = _delivery_count(properties, at, end) or (0, -1)
        elif shape == "s":
            at = at + 1 + properties[at] if 0 <= at < end else -1
        elif at >= 0:
            at += 1 if shape == "o" else 8
    return count if at == end else None


def _delivery_count(buf: bytes, pos: int, limit: int) -> tuple[int, int] | None:
    """(x-delivery-count as the listener reads it, offset after the table) of the headers table
    at ``pos``, bounded by ``limit``; None for a value type this does not read."""
    if pos < 0 or pos + 4 > limit:
        return None
    at = pos + 4
    end = at + _U32(buf, pos)[0]
    if end > limit:
        return None
    count: int | None = 0
    while at < end:
        key_end = at + 1 + buf[at]
        if key_end >= end:
            return None
        kind = buf[key_end]
        after = _value_end(buf, kind, key_end + 1, end)
        if after < 0:
            return None
        if buf.startswith(_COUNT_KEY, at) and key_end == at + len(_COUNT_KEY):  # the last one wins, as in pika
            count = _count(buf, kind, key_end + 1)
            if count is None:
                return None
        at = after
    return count, end


def _value_end(buf: bytes, kind: int, at: int, end: int) -> int:
    """The offset after a field value of type ``kind`` at ``at``; -1 past ``end`` or for a type
    this does not read."""
    fixed = _FIXED.get(kind)
    if fixed is not None:
        after = at + fixed
    elif kind in _LONG and at + 4 <= end:
        after = at + 4 + _U32(buf, at)[0]
    else:
        return -1
    return after if after <= end else -1


def _count(buf: bytes, kind: int, at: int) -> int | None:
    """``int(value or 0)`` of a delivery count of type ``kind``; None unless an integer, a boolean or void."""
    integer = _INTEGER.get(kind)
    if integer is not None:
        return int(integer(buf, at)[0])
    if kind == 0x74:  # t: a boolean
        return int(buf[at] != 0)
    return 0 if kind == 0x56 else None  # V: void


def _body(buf: bytes, pos: int, channel: int, size: int) -> tuple[bytes, int, int] | None:
    """(body, offset after its last frame, body frames) of body frames adding up to ``size``."""
    parts, remaining, frames = [], size, 0
    while remaining > 0:
        if len(buf) < pos + 7:
            return None
        kind, number, length = _FRAME_HEAD(buf, pos)
        end = pos + 7 + length
        if kind != 3 or number != channel or length > remaining or end >= len(buf) or buf[end] != FRAME_END:
            return None
        parts.append(buf[pos + 7 : end])
        remaining -= length
        pos, frames = end + 1, frames + 1
    return b"".join(parts), pos, frames


def incomplete_delivery(buf: bytes, pos: int, channel: int) -> bool:
    """True when ``buf[pos:]`` is a frame cut by the end of the buffer, or a Basic.Deliver on
    ``channel`` whose content (header, then body frames up to the header's body size) the buffer
    ends inside: more bytes are needed before anyone can read it. False when what is there is
    complete, or is something else."""
    at, frame, remaining = pos, 0, 0
    while True:
        if len(buf) - at < 7:
            return True
        kind, number, length = _FRAME_HEAD(buf, at)
        end = at + 8 + length
        if end > len(buf):
            return True
        if number != channel or kind != min(frame + 1, 3):
            return False
        if frame == 0 and (length < 4 or _U32(buf, at + 7)[0] != _DELIVER):
            return False
        if frame == 1:
            if length < 12:
                return False
            remaining = _U64(buf, at + 11)[0]
        elif frame > 1:
            remaining -= length
        if frame > 0 and remaining <= 0:
            return False
        at, frame = end, frame + 1
