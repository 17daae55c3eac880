"""AMQP 0-9-1 transport: the centre's listeners share one quorum queue of a RabbitMQ cluster.

Boxes publish plain MQTT to any node (RabbitMQ's MQTT plugin turns ``idstation/v1/S/C/K`` into
routing key ``idstation.v1.S.C.K`` on ``amq.topic``). Every listener consumes the same durable
quorum queue ``idstation.events`` (replicated on the cluster's nodes; a node's loss keeps it),
bound to ``amq.topic`` once per event kind (``idstation.v1.#.identity`` ...: the ``idstation.v1.#``
tree without the centre's own receipts, which would otherwise come back into it). Manual acknowledgement after
the store's commit; ``prefetch`` bounds what one listener holds (its memory and its share of
redeliveries when it dies); a killed listener's unacknowledged messages go to the others.

A message that keeps coming back (its listener dies or requeues it each time) is a *poison*
message: the queue's ``x-delivery-limit`` bounds its deliveries, then the broker dead-letters it
to ``idstation.dead`` (queue ``idstation.events.dead``), so the queue never stalls behind it.

Receipts go back through ``amq.topic`` as MQTT messages (routing key
``idstation.v1.S.C.receipt``, persistent, MQTT QoS 1). RabbitMQ 3.10 keeps no retained message
for a publish that did not come from MQTT: a box that was offline gets the receipt only through
its persistent session; otherwise it resends the event after its receipt timeout and the centre
answers the duplicate with a fresh receipt.

pika's BlockingConnection is not thread-safe: it lives on this adapter's thread, and other
threads hand it work with ``add_callback_threadsafe``. The consumer's common deliveries are read
from the socket's bytes by :mod:`.amqp_fast` (pika does the rest; ``fast=False``: pika alone).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pika
import pika.exceptions
import structlog
from idstation.mqtt.central.amqp_fast import FastConsumer, Pending, coalesce_writes, install
from idstation.mqtt.central.transport import (
    Delivery,
    OnMessage,
    OnMessages,
    routing_key_to_topic,
    topic_to_routing_key,
)
from idstation.mqtt.connection import Backoff
from idstation.mqtt.events import KINDS

log = structlog.get_logger(__name__)
logging.getLogger("pika").setLevel(logging.WARNING)  # its INFO lines narrate every connection step

__all__ = ["DEAD_EXCHANGE", "DEAD_QUEUE", "EVENT_QUEUE", "AmqpTransport", "declare_topology"]

EVENT_QUEUE = "idstation.events"
DEAD_EXCHANGE = "idstation.dead"
DEAD_QUEUE = "idstation.events.dead"
DELIVERY_LIMIT = 10
_FAILURES = (pika.exceptions.AMQPError, OSError)


def queue_arguments(delivery_limit: int = DELIVERY_LIMIT) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_EXCHANGE,
    }


def declare_topology(channel: Any, *, queue: str = EVENT_QUEUE, delivery_limit: int = DELIVERY_LIMIT) -> None:
    """Declare (idempotently) the event queue, its bindings and the dead-letter queue.
    Declare before boxes connect: RabbitMQ acknowledges a QoS 1 publish that reached no queue."""
    channel.exchange_declare(DEAD_EXCHANGE, "fanout", durable=True)
    channel.queue_declare(DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(DEAD_QUEUE, DEAD_EXCHANGE)
    channel.queue_declare(queue, durable=True, arguments=queue_arguments(delivery_limit))
    for kind in KINDS:
        channel.queue_bind(queue, "amq.topic", f"idstation.v1.#.{kind}")


class AmqpTransport:
    """Consume the shared quorum queue from any node of ``urls`` (tried in turn)."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        queue: str = EVENT_QUEUE,
        prefetch: int = 1000,
        delivery_limit: int = DELIVERY_LIMIT,
        heartbeat: int = 20,
        on_idle: Callable[[], None] | None = None,
        fast: bool = True,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("no AMQP URL")
        self.queue, self.prefetch, self.delivery_limit, self.heartbeat = queue, prefetch, delivery_limit, heartbeat
        self._on_idle = on_idle  # runs on the adapter's thread between reads (receipts: publish what is due)
        self.fast = fast  # read the common deliveries with amqp_fast (False: pika alone, for comparison)
        self._fast: FastConsumer | None = None
        self._on_message: OnMessage | None = None
        self._on_messages: OnMessages | None = None
        self._burst: list[Delivery] = []  # one process_data_events call's deliveries, for on_messages
        self._conn: Any = None
        self._channel: Any = None
        self._consumer: str | None = None
        self._generation = 0
        self._paused = False
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.node: str | None = None  # the URL connected to (no credentials: see _safe)
        self._backlog: int | None = None
        self._unsettled: set[int] = set()
        self._backlog_at = 0.0

    # --- the Transport port ------------------------------------------------------------------------

    def start(self, on_message: OnMessage, on_messages: OnMessages | None = None) -> None:
        self._on_message, self._on_messages = on_message, on_messages
        self._thread = threading.Thread(target=self._run, name="amqp-consumer", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        tags = self._tags(deliveries)
        if tags:
            self._call(lambda ch: self._settle(ch, tags))

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        tags = self._tags(deliveries)
        if tags:
            self._call(lambda ch: self._settle(ch, tags, requeue=True))

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """An MQTT message through ``amq.topic`` (``retain`` cannot be honoured: see the module doc)."""
        key = topic_to_routing_key(topic)
        # persistent -> MQTT QoS 1. No ``x-mqtt-publish-qos`` header: an integer one (as pika sends
        # it) crashes the subscriber's MQTT connection in RabbitMQ 3.10 (measured here).
        props = pika.BasicProperties(delivery_mode=2)
        self._call(lambda ch: ch.basic_publish("amq.topic", key, payload, props))

    def publish_many(self, items: Sequence[tuple[str, bytes]], *, retain: bool = False) -> None:
        """Several messages as :meth:`publish` sends each, in order, in one hand-over to the
        adapter's thread (the receipts due at one tick: one wake-up, not one per receipt), and
        written to the socket together."""
        batch = [(topic_to_routing_key(topic), payload) for topic, payload in items]
        if batch:
            self._call(lambda ch: _publish_all(ch, batch))

    def backlog(self) -> int | None:
        """Messages ready in the queue, as last seen (refreshed every 2 s; None before the first look)."""
        return self._backlog

    def pause(self) -> None:
        self._paused = True
        self._call(lambda _ch: self._cancel())

    def resume(self) -> None:
        self._paused = False
        self._call(lambda _ch: self._consume())

    # --- the adapter's thread -----------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(0.2, 5.0)
        for url in itertools.cycle(self.urls):
            if self._stop.is_set():
                return
            try:
                self._session(url)
                backoff.reset()
            except _FAILURES as exc:
                log.warning("amqp_connection_lost", node=_safe(url), error=type(exc).__name__)
            finally:
                self._ready.clear()
                self._close()
            self._stop.wait(backoff.next_delay())

    def _session(self, url: str) -> None:
        params = pika.URLParameters(url)
        params.heartbeat, params.connection_attempts, params.socket_timeout = self.heartbeat, 1, 5
        params.blocked_connection_timeout = 60
        self._conn = pika.BlockingConnection(params)
        self._channel = self._conn.channel()
        declare_topology(self._channel, queue=self.queue, delivery_limit=self.delivery_limit)
        self._channel.basic_qos(prefetch_count=self.prefetch)
        self._fast = install(self._conn, self._channel, self._take) if self.fast else None
        if self.fast:
            coalesce_writes(self._conn)
        self._generation += 1
        self._unsettled = set()  # delivery tags of this channel handed out, not yet settled
        self._burst = []  # a lost channel's deliveries: not acknowledged, the broker sends them again
        if not self._paused:
            self._consume()
        self.node = _safe(url)
        self._ready.set()
        log.info("amqp_consuming", node=self.node, queue=self.queue, prefetch=self.prefetch)
        while not self._stop.is_set():
            self._conn.process_data_events(time_limit=0.05)
            if self._burst:
                self._hand_over()
            if self._on_idle is not None:
                self._idle()
            if time.monotonic() - self._backlog_at >= 2.0:
                self._backlog_at = time.monotonic()
                declared = self._channel.queue_declare(self.queue, passive=True)
                self._backlog = int(declared.method.message_count)

    def _idle(self) -> None:
        assert self._on_idle is not None
        try:
            self._on_idle()
        except _FAILURES:
            raise
        except Exception as exc:  # the owner's hook must not end the consumer's thread
            log.error("amqp_idle_hook_failed", error=type(exc).__name__)

    def _consume(self) -> None:
        if self._consumer is None and self._channel is not None and not self._paused:
            tag = None
            if self._fast is not None:  # pika's own tag, known before the first delivery (it may come with Consume-Ok)
                tag = self._channel._impl._generate_consumer_tag()
                self._fast.consume(tag)
            self._consumer = self._channel.basic_consume(self.queue, self._deliver, auto_ack=False, consumer_tag=tag)

    def _cancel(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None and self._channel is not None:
            if self._fast is not None:
                self._fast.cancel()  # its undispatched deliveries go back, as pika's own do
            self._channel.basic_cancel(consumer)

    def _deliver(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        """pika's consumer callback (the deliveries amqp_fast leaves to pika)."""
        headers = props.headers
        count = int(headers.get("x-delivery-count", 0) or 0) if headers else 0
        tag, redelivered = method.delivery_tag, bool(method.redelivered)
        self._take(collections.deque(((b"", tag, redelivered, "", method.routing_key, count, body, 0, 0),)))

    def _take(self, pending: collections.deque[Pending]) -> None:
        """Deliveries, in arrival order, when pika would dispatch them (this adapter's thread);
        taken from the left one by one (what an ``on_message`` that cancels leaves is rejected)."""
        generation, unsettled, on_message = self._generation, self._unsettled, self._on_message
        burst = self._burst if self._on_messages is not None else None
        while pending:
            _consumer, tag, redelivered, _exchange, key, count, body, _end, _frames = pending.popleft()
            delivery = Delivery(routing_key_to_topic(key), body, time.time(), redelivered, count, (generation, tag))
            unsettled.add(tag)
            if burst is not None:
                burst.append(delivery)  # handed over when this process_data_events call returns
            else:
                assert on_message is not None
                on_message(delivery)

    def _hand_over(self) -> None:
        assert self._on_messages is not None
        burst, self._burst = self._burst, []
        self._on_messages(burst)

    def _settle(self, channel: Any, tags: list[int], *, requeue: bool = False) -> None:
        """On the adapter's thread. A batch that holds every unsettled delivery up to its highest
        tag is acknowledged with ONE ``multiple`` ack (the broker does one settlement, not 200);
        otherwise (an earlier delivery still in the listener's hands) one ack per delivery."""
        self._unsettled.difference_update(tags)
        top = max(tags)
        if requeue:
            for tag in tags:
                channel.basic_nack(tag, requeue=True)
        elif not any(tag < top for tag in self._unsettled):
            channel.basic_ack(top, multiple=True)
        else:
            for tag in tags:
                channel.basic_ack(tag)

    def _tags(self, deliveries: Sequence[Delivery]) -> list[int]:
        generation = self._generation
        return [d.token[1] for d in deliveries if d.token is not None and d.token[0] == generation]

    def _call(self, work: Callable[[Any], object]) -> None:
        """Run ``work(channel)`` on the adapter's thread (dropped if the connection is gone: the
        broker then redelivers what was not acknowledged)."""
        conn, channel, generation = self._conn, self._channel, self._generation

        def run() -> None:
            if self._generation == generation and channel is not None and channel.is_open:
                work(channel)

        if conn is None:
            return
        if threading.current_thread() is self._thread:
            run()
            return
        with contextlib.suppress(*_FAILURES):
            conn.add_callback_threadsafe(run)

    def _close(self) -> None:
        conn, self._conn, self._channel, self._consumer, self._fast = self._conn, None, None, None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(*_FAILURES):
                conn.close()


def _publish_all(channel: Any, batch: list[tuple[str, bytes]]) -> None:
    """Persistent messages to ``amq.topic`` in order, flushed once: BlockingChannel's
    ``basic_publish`` flushes after each; its underlying channel's queues the frames."""
    props = pika.BasicProperties(delivery_mode=2)
    impl, flush = getattr(channel, "_impl", None), getattr(channel, "_flush_output", None)
    if impl is None or flush is None:  # a pika without them: one flush each
        for key, payload in batch:
            channel.basic_publish("amq.topic", key, payload, props)
        return
    for key, payload in batch:
        impl.basic_publish("amq.topic", key, payload, props)
    flush()


def _safe(url: str) -> str:
    """A URL without its credentials (for logs and metrics)."""
    params = pika.URLParameters(url)
    return f"{params.host}:{params.port}"
