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

Both touch paho's private hooks ``_sock_recv`` and ``_packet_queue`` (paho-mqtt 2.1-2.x, pinned
``<3`` in pyproject.toml); :func:`send_pubacks` falls back to ``ack()`` if the hook is gone.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt

__all__ = ["READ_CHUNK", "BufferedClient", "send_pubacks"]

READ_CHUNK = 64 * 1024
_PUBACK = 0x40


class BufferedClient(mqtt.Client):
    _rbuf: bytes = b""
    _rpos: int = 0

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
