"""The centre's fast PUBLISH decoder reads exactly what paho's own decoder reads, and leaves to paho
every PUBLISH it does not handle (not QoS 1, with properties, an empty topic, truncated)."""

from __future__ import annotations

import struct

import paho.mqtt.client as paho
from hypothesis import given
from hypothesis import strategies as st
from idstation.mqtt.paho_client import parse_publish
from paho.mqtt._packet import decode_publish

topics = st.text(min_size=1, max_size=60).map(lambda t: t.encode("utf-8")).filter(lambda b: len(b) < 65536)


def _packet(topic: bytes, mid: int | None, properties: bytes, payload: bytes) -> bytes:
    ident = b"" if mid is None else struct.pack("!H", mid)
    return struct.pack("!H", len(topic)) + topic + ident + bytes([len(properties)]) + properties + payload


@given(
    topic=topics, mid=st.integers(1, 65535), dup=st.booleans(), retain=st.booleans(), payload=st.binary(max_size=3000)
)
def test_a_qos1_publish_without_properties_decodes_as_paho_decodes_it(topic, mid, dup, retain, payload) -> None:
    command = 0x30 | 0x02 | (0x08 if dup else 0) | (0x01 if retain else 0)
    packet = _packet(topic, mid, b"", payload)
    ours = parse_publish(command, packet)
    theirs = decode_publish(command, packet, paho.MQTTv5)
    assert ours == (theirs.topic, theirs.mid, theirs.dup, theirs.retain, theirs.payload)


@given(topic=topics, mid=st.integers(1, 65535), payload=st.binary(max_size=200))
def test_a_publish_with_properties_is_left_to_paho(topic, mid, payload) -> None:
    packet = _packet(topic, mid, b"\x01\x01", payload)  # Payload Format Indicator = 1
    assert parse_publish(0x32, packet) is None
    assert decode_publish(0x32, packet, paho.MQTTv5).payload == payload


def test_other_qos_empty_topics_and_truncated_packets_are_left_to_paho() -> None:
    assert parse_publish(0x30, _packet(b"a/b", None, b"", b"x")) is None  # QoS 0
    assert parse_publish(0x34, _packet(b"a/b", 7, b"", b"x")) is None  # QoS 2
    assert parse_publish(0x32, _packet(b"", 7, b"", b"x")) is None  # topic alias form
    whole = _packet(b"a/b", 7, b"", b"")
    assert parse_publish(0x32, whole) == (b"a/b", 7, False, False, b"")
    for cut in range(len(whole)):
        assert parse_publish(0x32, whole[:cut]) is None
