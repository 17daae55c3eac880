"""The AMQP delivery decoder (mqtt/central/amqp_frames.py) against pika's own frame encoder and
decoder: whenever it reads a delivery, pika reads the same one from the same bytes (same tag,
redelivered flag, exchange, routing key, delivery count as the listener reads it, body, bytes
and frames consumed); it reads every delivery of the usual shape; it never raises, never reads
past a truncated buffer, and a stream mixing what it takes with what it leaves to pika gives
pika's deliveries in pika's order."""

from __future__ import annotations

import struct
from typing import Any

import pika.frame
import pika.spec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.central.amqp_frames import incomplete_delivery, parse_delivery
from pika.channel import ContentFrameAssembler

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHANNEL = 1


def reference(buf: bytes, pos: int, channel: int) -> Any:
    """What pika makes of the delivery at ``buf[pos:]``: frame by frame through
    ``decode_frame`` and a channel's content assembler, then the values amqp.py's ``_deliver``
    reads. None when incomplete; "other" when not a delivery on ``channel``; "error" when pika
    (or the listener's reading of it) raises."""
    assembler, at, frames = ContentFrameAssembler(), pos, 0
    try:
        while True:
            consumed, value = pika.frame.decode_frame(buf[at:])
            if value is None:
                return None
            at, frames = at + consumed, frames + 1
            if getattr(value, "channel_number", None) != channel:
                return "other"
            is_deliver = isinstance(value, pika.frame.Method) and isinstance(value.method, pika.spec.Basic.Deliver)
            if frames == 1 and not is_deliver:
                return "other"
            done = assembler.process(value)
            if done:
                method, header, body = done[0].method, done[1], done[2]
                headers = header.properties.headers
                count = int(headers.get("x-delivery-count", 0) or 0) if headers else 0
                if not isinstance(method.routing_key, str) or not isinstance(method.exchange, str):
                    return "error"
                tag = method.consumer_tag
                tag = tag.encode() if isinstance(tag, str) else tag
                fields = (method.delivery_tag, method.redelivered, method.exchange, method.routing_key, count, body)
                return (tag, *fields, at, frames)
    except Exception:
        return "error"


def marshal(
    *,
    tag: str = "ctag1.abc",
    delivery_tag: int = 1,
    redelivered: bool = False,
    exchange: str = "amq.topic",
    key: str = "idstation.v1.s1.c1.identity",
    properties: pika.spec.BasicProperties | None = None,
    body: bytes = b"x" * 700,
    chunks: list[int] | None = None,
    channel: int = CHANNEL,
) -> bytes:
    deliver = pika.spec.Basic.Deliver(tag, delivery_tag, redelivered, exchange, key)
    props = properties or pika.spec.BasicProperties(
        delivery_mode=2, headers={"x-delivery-count": 0, "x-mqtt-dup": False, "x-mqtt-publish-qos": 1}
    )
    out = [pika.frame.Method(channel, deliver).marshal(), pika.frame.Header(channel, len(body), props).marshal()]
    at = 0
    for size in chunks or [len(body)]:
        if at < len(body) or not body:
            out.append(pika.frame.Body(channel, body[at : at + size]).marshal())
        at += size
    if at < len(body):
        out.append(pika.frame.Body(channel, body[at:]).marshal())
    if not body:
        out = out[:2]
    return b"".join(out)


# --- raw header tables: every AMQP field type, encoded by hand (pika's encoder only makes some) ---

_SIZES = dict(zip("tbBUusIiLlDVfdT", (1, 1, 1, 2, 2, 2, 4, 4, 8, 8, 5, 0, 4, 8, 8), strict=True))


@st.composite
def field_value(draw: Any, kinds: str) -> bytes:
    kind = draw(st.sampled_from(kinds))
    return encode_field(draw, kind)


def encode_field(draw: Any, kind: str) -> bytes:
    if kind in _SIZES:
        return kind.encode() + draw(st.binary(min_size=_SIZES[kind], max_size=_SIZES[kind]))
    if kind in "Sx":
        data = draw(st.one_of(st.text(max_size=20).map(str.encode), st.binary(max_size=20)))
        return kind.encode() + struct.pack(">I", len(data)) + data
    inner = b"".join(draw(st.lists(field_value("tbIlSV"), max_size=3)))
    if kind == "A":
        return b"A" + struct.pack(">I", len(inner)) + inner
    table = b"".join(b"\x01k" + v for v in draw(st.lists(field_value("tbIlSV"), max_size=3)))
    return b"F" + struct.pack(">I", len(table)) + table


KEYS = st.sampled_from([b"x-delivery-count", b"x-mqtt-dup", b"x-mqtt-publish-qos", b"", b"other", b"\xff\xfe"])


INTEGERS = "tbBUusIiLlV"  # what the listener reads a delivery count from without failing


def raw_table(draw: Any, kinds: str) -> bytes:
    """Entries of any of ``kinds``; in the usual shape (no ``f``), x-delivery-count is an integer."""
    entry = st.tuples(KEYS, field_value(kinds))
    if "f" not in kinds:
        entry = entry.filter(lambda e: e[0] != b"x-delivery-count" or chr(e[1][0]) in INTEGERS)
    entries = draw(st.lists(entry, max_size=6))
    body = b"".join(bytes([len(k)]) + k + v for k, v in entries)
    return struct.pack(">I", len(body)) + body


def short(draw: Any) -> bytes:
    data = draw(st.text(max_size=30).map(str.encode).filter(lambda b: len(b) < 256))
    return bytes([len(data)]) + data


@st.composite
def raw_header_frame(draw: Any, body_size: int, kinds: str) -> bytes:
    """A Basic content header frame with any property flags and a hand-made headers table."""
    flags = draw(st.integers(0, 0xFFFF)) & ~1
    props = b""
    for bit, shape in zip(range(15, 1, -1), "sshoossssqssss", strict=True):
        if flags & (1 << bit):
            if shape == "s":
                props += short(draw)
            elif shape == "h":
                props += raw_table(draw, kinds)
            else:
                props += draw(st.binary(min_size=1 if shape == "o" else 8, max_size=1 if shape == "o" else 8))
    payload = struct.pack(">HHQH", 60, 0, body_size, flags) + props
    return struct.pack(">BHI", 2, CHANNEL, len(payload)) + payload + b"\xce"


def method_and_body(draw: Any, body: bytes) -> tuple[bytes, bytes]:
    deliver = pika.spec.Basic.Deliver(
        draw(st.text(max_size=40)),
        draw(st.integers(0, 2**64 - 1)),
        draw(st.booleans()),
        draw(st.text(max_size=60)),
        draw(st.text(max_size=255).filter(lambda s: len(s.encode()) < 256)),
    )
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)] if body else []
    while pieces and not pieces[-1]:  # the body is complete at its last byte: no frame after it
        pieces.pop()
    bodies = b"".join(pika.frame.Body(CHANNEL, p).marshal() for p in pieces)
    return pika.frame.Method(CHANNEL, deliver).marshal(), bodies


@st.composite
def delivery(draw: Any, kinds: str) -> bytes:
    body = draw(st.binary(max_size=300))
    method, bodies = method_and_body(draw, body)
    return method + draw(raw_header_frame(len(body), kinds)) + bodies


FAST_KINDS = "tbBUusIiLlDVSx"
ALL_KINDS = FAST_KINDS + "fdTAF"


@SETTINGS
@given(delivery(FAST_KINDS))
def test_every_delivery_of_the_usual_shape_is_read_as_pika_reads_it(buf: bytes) -> None:
    got = parse_delivery(buf, 0, CHANNEL)
    assert got is not None
    assert got == reference(buf, 0, CHANNEL)
    assert got[7] == len(buf)


@SETTINGS
@given(delivery(ALL_KINDS), st.binary(max_size=40))
def test_whenever_it_reads_a_delivery_pika_reads_the_same_one(buf: bytes, tail: bytes) -> None:
    got = parse_delivery(buf + tail, 0, CHANNEL)
    if got is not None:
        assert got == reference(buf + tail, 0, CHANNEL)


@SETTINGS
@given(delivery(FAST_KINDS), st.data())
def test_mutated_buffers_are_read_as_pika_reads_them_or_left_to_it(buf: bytes, data: Any) -> None:
    mutated = bytearray(buf)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    got = parse_delivery(bytes(mutated), 0, CHANNEL)
    if got is not None:
        assert got == reference(bytes(mutated), 0, CHANNEL)


def test_pika_built_properties_of_every_flag_and_table_type_are_read_as_pika_reads_them() -> None:
    import datetime
    import decimal

    headers = {"x-delivery-count": 3, "s": "é", "b": b"\x00\xff", "t": True, "n": None, "big": 2**40, "neg": -5}
    props = pika.spec.BasicProperties(
        content_type="application/octet-stream", content_encoding="identity", headers=headers, delivery_mode=2,
        priority=4, correlation_id="c", reply_to="r", expiration="60000", message_id="m", timestamp=1_700_000_000,
        type="t", user_id="guest", app_id="a", cluster_id="k",
    )  # fmt: skip
    buf = marshal(properties=props)
    assert parse_delivery(buf, 0, CHANNEL) == reference(buf, 0, CHANNEL)
    assert parse_delivery(buf, 0, CHANNEL)[5] == 3
    for value in (decimal.Decimal("1.5"), datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), [1], {"a": 1}):
        buf = marshal(properties=pika.spec.BasicProperties(headers={"x": value, "x-delivery-count": 1}))
        got = parse_delivery(buf, 0, CHANNEL)
        assert got is None or got == reference(buf, 0, CHANNEL), value


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"redelivered": True, "delivery_tag": 2**64 - 1},
        {"body": b""},
        {"body": b"a" * 1000, "chunks": [100, 0, 400, 500]},
        {"key": "k" * 255, "exchange": ""},
        {"properties": pika.spec.BasicProperties()},
        {"properties": pika.spec.BasicProperties(headers={})},
        {"properties": pika.spec.BasicProperties(headers={"x-delivery-count": 7, "x-delivery-count ": 9})},
        {"tag": "", "key": "", "body": b"\x00"},
    ],
)
def test_examples_read_as_pika_reads_them(options: dict[str, Any]) -> None:
    buf = marshal(**options)
    got = parse_delivery(buf, 0, CHANNEL)
    assert got is not None and got == reference(buf, 0, CHANNEL)


def test_the_delivery_count_is_what_the_listener_reads() -> None:
    assert parse_delivery(marshal(), 0, CHANNEL)[5] == 0
    headers = {"x-delivery-count": 4, "x-mqtt-dup": True}
    assert parse_delivery(marshal(properties=pika.spec.BasicProperties(headers=headers)), 0, CHANNEL)[5] == 4
    text = pika.spec.BasicProperties(headers={"x-delivery-count": "4"})  # pika reads "4": left to it
    assert parse_delivery(marshal(properties=text), 0, CHANNEL) is None


def test_every_prefix_of_a_delivery_is_left_to_pika_and_reading_starts_at_pos() -> None:
    buf = marshal(body=b"b" * 50, chunks=[10, 20, 20])
    for end in range(len(buf)):
        assert parse_delivery(buf[:end], 0, CHANNEL) is None
    prefixed = b"junk" + buf + b"\x08\x00\x00\x00\x00\x00\x00\xce"
    got = parse_delivery(prefixed, 4, CHANNEL)
    assert got is not None and got[7] == 4 + len(buf) and got[8] == 5
    assert parse_delivery(prefixed, len(prefixed), CHANNEL) is None
    assert parse_delivery(prefixed, -1, CHANNEL) is None


def test_other_channels_methods_frame_ends_and_overlong_bodies_are_left_to_pika() -> None:
    buf = marshal(body=b"b" * 20)
    assert parse_delivery(buf, 0, 2) is None
    assert parse_delivery(marshal(channel=2), 0, 2) is not None
    method_len = len(pika.frame.Method(1, pika.spec.Basic.Deliver("ctag1.abc", 1, False, "amq.topic", "k")).marshal())
    other = pika.frame.Method(1, pika.spec.Basic.GetOk(1, False, "amq.topic", "k", 0)).marshal()
    assert parse_delivery(other + buf[method_len + 23 :], 0, CHANNEL) is None
    for index in range(len(buf)):
        if buf[index] == 0xCE:
            broken = buf[:index] + b"\xcf" + buf[index + 1 :]
            assert parse_delivery(broken, 0, CHANNEL) is None
    too_long = marshal(body=b"b" * 20)[:-28] + pika.frame.Body(CHANNEL, b"c" * 21).marshal()
    assert parse_delivery(too_long, 0, CHANNEL) is None
    assert reference(too_long, 0, CHANNEL) == "error"
    bad_key = marshal(key="k").replace(b"\x01k", b"\x01\xff")
    assert parse_delivery(bad_key, 0, CHANNEL) is None
    heartbeat = pika.frame.Heartbeat().marshal()
    assert parse_delivery(heartbeat + buf, 0, CHANNEL) is None


@SETTINGS
@given(st.lists(st.sampled_from(["fast", "array", "big", "heartbeat", "ack", "other_channel"]), max_size=12))
def test_a_stream_mixing_fast_and_pika_frames_gives_pikas_deliveries_in_order(kinds: list[str]) -> None:
    parts = []
    for tag, kind in enumerate(kinds, 1):
        if kind == "fast":
            parts.append(marshal(delivery_tag=tag, body=b"f%d" % tag))
        elif kind == "array":
            props = pika.spec.BasicProperties(headers={"x-delivery-count": 2, "w": [0]})
            parts.append(marshal(delivery_tag=tag, properties=props))
        elif kind == "big":
            parts.append(marshal(delivery_tag=tag, body=b"B" * 3000, chunks=[1000, 1000, 1000]))
        elif kind == "heartbeat":
            parts.append(pika.frame.Heartbeat().marshal())
        elif kind == "ack":
            parts.append(pika.frame.Method(CHANNEL, pika.spec.Basic.Ack(tag)).marshal())
        else:
            parts.append(marshal(delivery_tag=tag, channel=2))
    stream = b"".join(parts)
    assert _drain(stream, fast=True) == _drain(stream, fast=False)


def _drain(stream: bytes, *, fast: bool) -> list[Any]:
    """Deliveries of channel 1, in order, as a connection's read loop makes them: the decoder
    first (``fast``), else one frame through pika into the channel's assembler."""
    out: list[Any] = []
    assemblers = {1: ContentFrameAssembler(), 2: ContentFrameAssembler()}
    pos = 0
    while pos < len(stream):
        got = parse_delivery(stream, pos, CHANNEL) if fast and assemblers[1]._method_frame is None else None
        if got is not None:
            out.append(got[1:7])
            pos = got[7]
            continue
        consumed, value = pika.frame.decode_frame(stream[pos:])
        pos += consumed
        if isinstance(value, pika.frame.Heartbeat) or (
            isinstance(value, pika.frame.Method) and not isinstance(value.method, pika.spec.Basic.Deliver)
        ):
            continue
        done = assemblers[value.channel_number].process(value)
        if done and value.channel_number == CHANNEL:
            method, header, body = done[0].method, done[1], done[2]
            count = int((header.properties.headers or {}).get("x-delivery-count", 0) or 0)
            out.append((method.delivery_tag, method.redelivered, method.exchange, method.routing_key, count, body))
    return out


@pytest.mark.parametrize("options", [{}, {"body": b""}, {"body": b"a" * 1000, "chunks": [100, 0, 400, 500]}])
def test_a_delivery_cut_by_the_end_of_the_buffer_is_incomplete_and_a_whole_one_is_not(options: dict[str, Any]) -> None:
    buf = marshal(**options)
    for end in range(len(buf)):
        assert incomplete_delivery(buf[:end], 0, CHANNEL), end
    assert not incomplete_delivery(buf, 0, CHANNEL)
    assert not incomplete_delivery(buf + buf[:30], 0, CHANNEL)
    assert incomplete_delivery(b"zz" + buf[:-1], 2, CHANNEL)


def test_whole_frames_that_are_no_delivery_of_the_channel_are_not_incomplete() -> None:
    buf = marshal(body=b"b" * 20)
    assert not incomplete_delivery(pika.frame.Heartbeat().marshal() + buf[:10], 0, CHANNEL)
    assert not incomplete_delivery(marshal(channel=2)[:-5], 0, CHANNEL)
    assert not incomplete_delivery(pika.frame.Method(CHANNEL, pika.spec.Basic.Ack(1)).marshal() + buf[:9], 0, CHANNEL)
    header_end = len(buf) - 28
    assert not incomplete_delivery(buf[:header_end] + pika.frame.Heartbeat().marshal(), 0, CHANNEL)


@SETTINGS
@given(delivery(ALL_KINDS), st.binary(max_size=40))
def test_the_incompleteness_check_never_raises(buf: bytes, tail: bytes) -> None:
    for end in range(0, len(buf), 7):
        assert incomplete_delivery(buf[:end] + tail, 0, CHANNEL) in (True, False)
