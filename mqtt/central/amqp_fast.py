"""The listener's AMQP consumer reads its common deliveries from the socket's bytes itself.

pika 1.x turns received bytes into frames in ``Connection._on_data_available``: one
``decode_frame`` per frame (objects for the method, the properties and their headers table, the
body), the connection's and the channel's dispatch, the channel's content assembler, then a
BlockingChannel pending event per delivery; and its socket transport reads 4 KiB per ``recv()``
(5 deliveries of an identity event; each ``recv`` releases the GIL, which the listener's busy
check thread then holds for up to the switch interval). A bare pika consumer costs ~21 us of CPU
per delivery here. :class:`FastConsumer` takes that hook for ONE BlockingChannel's consumer:

- each received chunk is scanned from its start; a complete delivery of the usual shape on the
  consumer's channel, for the consumer's tag (:func:`~.amqp_frames.parse_delivery`), becomes a
  *pending* tuple; anything else goes through pika unchanged, one frame at a time and in order
  (``_read_frame``, ``_trim_frame_buffer``, ``_process_frame``: pika's own loop, one turn), so
  heartbeats, Basic.Cancel, Channel.Close, Connection.Blocked, other channels and unusual
  deliveries are pika's as before. The connection's ``bytes_received``/``frames_received`` (the
  heartbeat checker's) count what the fast path took;
- the fast path only runs while pika holds nothing of this consumer's that could come before:
  the channel's content assembler is idle, the BlockingChannel has no pending event, the
  consumer is registered and not being cancelled, the connection and channel are open, and pika
  is not dispatching its events (nested I/O in its callbacks goes to pika, whose loop dispatches
  what arrives meanwhile). Deliveries therefore reach the owner in the order they arrived;
- pending deliveries are dispatched where pika dispatches its own (the BlockingChannel's
  ``_dispatch_events``, wrapped: these first, then pika's), and the connection is asked to
  dispatch, so ``process_data_events`` returns when it would have;
- :meth:`FastConsumer.cancel` does before ``basic_cancel`` what pika's does to the consumer's
  undispatched deliveries: reject them with requeue, in arrival order;
- the transport reads :data:`READ_CHUNK` per ``recv()``. A delivery cut by the end of a chunk is
  held (up to :data:`HOLD_MAX` bytes) until the rest arrives rather than half-taken by pika.

An ``on_message`` callback that does I/O (acks on the adapter's thread) while pika dispatches
deliveries it decoded keeps the ones arriving meanwhile on pika's path until its queue drains;
the listener's mode (``on_messages``, acknowledged from the commit thread) does not. Measured
(bench/transport_central.py --ab, same run, alternating): ~8-12 us of CPU per delivery for
AmqpTransport and its sink against ~26-31 us with ``fast=False``.

Touches pika's private names (pika 1.3-1.4: ``_on_data_available``, ``_frame_buffer``,
``_read_frame``, ``_trim_frame_buffer``, ``_process_frame``, ``_channels``, ``_transport``
and its ``_MAX_RECV_BYTES``, Channel ``_generate_consumer_tag`` (amqp.py),
BlockingChannel ``_dispatch_events``/``_pending_events``/``_consumer_infos``, Channel
``_consumers``/``_cancelled``/``_content_assembler``); :func:`install` returns None (and the
adapter runs on plain pika) when one is missing.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from idstation.mqtt.central.amqp_frames import Delivered, incomplete_delivery, parse_delivery

__all__ = ["HOLD_MAX", "READ_CHUNK", "FastConsumer", "Pending", "coalesce_writes", "install"]

READ_CHUNK = 64 * 1024
HOLD_MAX = 64 * 1024
_SIZE = struct.Struct(">I").unpack_from
Pending = Delivered  # consumer tag, delivery tag, redelivered, exchange, routing key, count, body, end, frames


def install(connection: Any, channel: Any, sink: Callable[[deque[Pending]], None]) -> FastConsumer | None:
    """A :class:`FastConsumer` on ``channel`` of ``connection`` (pika BlockingConnection and
    BlockingChannel), or None when this pika lacks a hook it needs."""
    impl = getattr(connection, "_impl", None)
    chan = getattr(channel, "_impl", None)
    names = ("_on_data_available", "_frame_buffer", "_read_frame", "_trim_frame_buffer", "_process_frame", "_channels")
    if impl is None or chan is None or not all(hasattr(impl, name) for name in names):
        return None
    if not all(hasattr(channel, n) for n in ("_dispatch_events", "_pending_events", "_consumer_infos")):
        return None
    if not all(hasattr(chan, n) for n in ("_consumers", "_cancelled", "_content_assembler", "_generate_consumer_tag")):
        return None
    return FastConsumer(connection, channel, sink)


class FastConsumer:
    """See the module docstring. Lives on the connection's thread, like pika."""

    def __init__(self, connection: Any, channel: Any, sink: Callable[[deque[Pending]], None]) -> None:
        self._impl, self._channel, self._chan = connection._impl, channel, channel._impl
        self._number = channel.channel_number
        self._request_dispatch = connection._request_channel_dispatch
        self._pika_dispatch = channel._dispatch_events
        self._sink = sink  # takes deliveries from the left of the deque it is given, in order
        self._pending: deque[Pending] = deque()
        self._handing: deque[Pending] | None = None  # what the sink is taking from
        self._tag: bytes | None = None
        self._tag_name: str | None = None
        self._in_pika_dispatch = False
        self.taken = 0  # deliveries read here (the rest went through pika)
        self._impl._on_data_available = self._on_data
        channel._dispatch_events = self._dispatch
        transport = getattr(self._impl, "_transport", None)
        if transport is not None and getattr(transport, "_MAX_RECV_BYTES", READ_CHUNK) < READ_CHUNK:
            transport._MAX_RECV_BYTES = READ_CHUNK

    def consume(self, tag: str) -> None:
        """Read deliveries for consumer ``tag`` (given to ``basic_consume``: deliveries may come
        with its Consume-Ok)."""
        self._tag, self._tag_name = tag.encode(), tag

    def cancel(self) -> None:
        """Call before ``BlockingChannel.basic_cancel``: reject (requeue) the deliveries read
        here and not yet handed over (also the rest of one being handed over, when a callback
        cancels), as pika's basic_cancel does with its own, in arrival order; stop reading."""
        known = self._tag_name is not None and self._tag_name in self._channel._consumer_infos
        for queue in (self._handing, self._pending):
            while queue:
                item = queue.popleft()
                if known:
                    self._chan.basic_reject(item[1], requeue=True)
        self._tag = self._tag_name = None

    # --- pika's hooks -------------------------------------------------------------------------------

    def _ready(self) -> bool:
        tag, chan, channel = self._tag_name, self._chan, self._channel
        return (
            tag is not None
            and not self._in_pika_dispatch
            and self._impl.is_open
            and chan.is_open
            and chan._content_assembler._method_frame is None
            and not channel._pending_events
            and tag in chan._consumers
            and tag not in chan._cancelled
            and tag in channel._consumer_infos
        )

    def _on_data(self, data: bytes) -> None:
        """pika's ``Connection._on_data_available``."""
        impl = self._impl
        buf = impl._frame_buffer + data if impl._frame_buffer else data
        impl._frame_buffer = b""
        pos, size, number, tag, pending = 0, len(buf), self._number, self._tag, self._pending
        start = taken = frames = 0  # the current run of deliveries read here: from, how many, frames
        ready = self._ready()
        while pos < size:
            if ready:
                got = parse_delivery(buf, pos, number)
                if got is not None and got[0] == tag:
                    pending.append(got)
                    pos, taken, frames = got[7], taken + 1, frames + got[8]
                    continue
                if got is None and size - pos < HOLD_MAX and incomplete_delivery(buf, pos, number):
                    impl._frame_buffer = buf[pos:]  # the rest of it is on its way
                    break
            self._count(taken, frames, pos - start)
            step = self._through_pika(buf, pos)
            if step is None:
                return
            buf, pos = step
            size, ready, pending, start, taken, frames = len(buf), self._ready(), self._pending, pos, 0, 0
        self._count(taken, frames, pos - start)

    def _count(self, taken: int, frames: int, size: int) -> None:
        """A run of deliveries read here: into pika's counters (the heartbeat checker's) before
        pika sees another frame, and a dispatch request."""
        if taken:
            self._impl.bytes_received += size
            self._impl.frames_received += frames
            self.taken += taken
            self._request_dispatch(self._number)

    def _through_pika(self, buf: bytes, pos: int) -> tuple[bytes, int] | None:
        """One turn of pika's own loop on the frame at ``pos``, given to it alone (pika copies its
        whole buffer per frame). (buffer, position) to go on from; None when pika keeps the rest
        (an incomplete frame) or the stream ended (pika then dropped what it had)."""
        impl = self._impl
        end = len(buf)
        if end - pos >= 7 and not buf.startswith(b"AMQP", pos):
            end = min(end, pos + 8 + _SIZE(buf, pos + 3)[0])
        impl._frame_buffer = buf[pos:end]
        channels = impl._channels
        consumed, value = impl._read_frame()
        if not value:
            return None
        impl._trim_frame_buffer(consumed)
        impl._process_frame(value)
        if impl._channels is not channels:
            return None
        rest, impl._frame_buffer = impl._frame_buffer, b""
        return (rest + buf[end:], 0) if rest else (buf, end)

    def _dispatch(self) -> None:
        """The BlockingChannel's ``_dispatch_events``: the deliveries read here (they arrived
        before any pika holds; more may arrive in a callback's nested I/O, and pika's still come
        after them), then pika's events (nested I/O meanwhile goes to pika: its loop dispatches
        what arrives while it runs)."""
        while self._pending:
            self._handing, self._pending = self._pending, deque()
            try:
                self._sink(self._handing)
            finally:
                self._handing = None
        self._in_pika_dispatch = True
        try:
            self._pika_dispatch()
        finally:
            self._in_pika_dispatch = False


def coalesce_writes(connection: Any) -> bool:
    """Make pika's socket transport send what it has buffered in one ``send()``: it sends each
    buffered frame with a call of its own (a message is three frames), and every ``send()``
    releases the GIL, which the listener's busy check thread then holds for up to the switch
    interval before this thread can go on. The bytes and their order are unchanged. False (pika
    as it is) when this pika lacks ``_transport._produce``/``_tx_buffers``."""
    transport = getattr(getattr(connection, "_impl", None), "_transport", None)
    produce, buffers = getattr(transport, "_produce", None), getattr(transport, "_tx_buffers", None)
    if produce is None or buffers is None:
        return False

    def produce_joined() -> None:
        if len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)
        produce()

    transport._produce = produce_joined
    return True
