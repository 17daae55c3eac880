"""paho-mqtt's client with a read buffer, and PUBACKs written in one go.

paho 2.x reads a packet with one ``recv()`` per byte of its fixed header (the type byte, then
each Remaining Length byte) and one for the rest, and ``loop_read()`` handles a single packet
when it has nothing outgoing; ``ack()`` queues each PUBACK as a packet of its own, writes it
with a ``send()`` and pokes its wake-up socket pair with another. A listener draining a backlog
paid that per message (py-spy, 60,000 QoS 1 messages: 30 % of its connection thread in
``recv``/``send`` and the select loop around them). Here:

- :class:`BufferedClient` reads up to 64 KiB per ``recv()`` and serves paho's small reads from
  that buffer (a slice copies only what was asked); :meth:`BufferedClient.buffered` tells the
  event loop that whole packets may be waiting in it although the socket has nothing to read.
- :func:`send_pubacks` queues the PUBACKs of a batch of message ids as ONE packet write (each
  PUBACK is the same 4 bytes paho's ``ack()`` would send: MQTT 3.1.1 §3.4, MQTT 5 §3.4.2.1,
  Success with no properties).

- With manual acknowledgement (the centre), a QoS 1 MQTT 5 PUBLISH without properties (what
  boxes send) is decoded by :func:`parse_publish` into a small :class:`Publish` and handed to
  ``on_message`` directly: paho builds a ``Properties`` object (a 40-entry table, cleared twice),
  an ``MQTTMessage`` with a ``threading.Condition`` and walks its topic matcher for every message
  (~8 % of a draining listener's on-CPU samples, py-spy). Any other PUBLISH goes through paho.

These touch paho's private hooks ``_sock_recv``, ``_packet_queue``, ``_in_packet`` and
``_handle_publish`` (paho-mqtt 2.1-2.x, pinned ``<3`` in pyproject.toml); :func:`send_pubacks`
falls back to ``ack()`` if the hook is gone.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt

__all__ = ["READ_CHUNK", "BufferedClient", "Publish", "parse_publish", "send_pubacks"]

READ_CHUNK = 64 * 1024
_PUBACK = 0x40


class Publish:
    """What ``on_message`` reads of a message (the names of paho's ``MQTTMessage``)."""

    __slots__ = ("dup", "mid", "payload", "properties", "qos", "retain", "timestamp", "topic")

    def __init__(self, topic: str, mid: int, dup: bool, retain: bool, payload: bytes) -> None:
        self.topic, self.mid, self.dup, self.retain, self.payload = topic, mid, dup, retain, payload
        self.qos, self.properties, self.timestamp = 1, None, 0.0


def parse_publish(command: int, packet: bytes) -> tuple[bytes, int, bool, bool, bytes] | None:
    """(topic, packet id, dup, retain, payload) of a QoS 1 MQTT 5 PUBLISH whose Property Length is
    0 (MQTT 5 §3.3.1-3.3.2: topic as a 2-byte length + bytes, packet id, properties); ``packet``
    is what follows the fixed header. None for anything else (paho decodes it)."""
    if (command & 0x06) != 0x02 or len(packet) < 3:
        return None
    topic_end = 2 + ((packet[0] << 8) | packet[1])
    if topic_end == 2 or len(packet) < topic_end + 3 or packet[topic_end + 2] != 0:
        return None  # empty topic (an alias), truncated, or properties present
    mid = (packet[topic_end] << 8) | packet[topic_end + 1]
    payload = bytes(packet[topic_end + 3 :])
    return bytes(packet[2:topic_end]), mid, bool(command & 0x08), bool(command & 0x01), payload


class BufferedClient(mqtt.Client):
    _rbuf: bytes = b""
    _rpos: int = 0

    def message_callback_add(self, sub: str, callback: Any) -> None:
        raise TypeError("BufferedClient hands every message to on_message (no per-topic callbacks)")

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        fields = None
        if self._manual_ack and self._protocol == mqtt.MQTTv5:
            fields = parse_publish(self._in_packet["command"], self._in_packet["packet"])
        if fields is None:
            return super()._handle_publish()
        topic, mid, dup, retain, payload = fields
        try:
            text = topic.decode("utf-8")
        except UnicodeDecodeError:
            return super()._handle_publish()  # paho's own handling of a bad topic
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, Publish(text, mid, dup, retain, payload))
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(max(bufsize, READ_CHUNK))  # BlockingIOError when nothing is there
            if not buf:
                return buf  # the peer closed the connection
            pos = 0
            self._rbuf = buf
        chunk = buf[pos : pos + bufsize]
        self._rpos = pos + len(chunk)
        return chunk

    def buffered(self) -> bool:
        """Bytes already read from the socket that paho has not taken yet."""
        return self._rpos < len(self._rbuf)


def send_pubacks(client: Any, mids: Sequence[int]) -> None:
    """Acknowledge these QoS 1 message ids in one packet write (paho's ``ack()`` one by one if its
    private queue is not there)."""
    if not mids:
        return
    queue = getattr(client, "_packet_queue", None)
    if queue is None:
        for mid in mids:
            client.ack(mid, 1)
        return
    words = [(_PUBACK << 24) | (2 << 16) | mid for mid in mids]
    queue(_PUBACK, struct.pack(f"!{len(words)}I", *words), 0, 1)
