"""The listener's transport port: where deliveries come from and where receipts go.

The batching listener (verify -> record -> ack -> receipts -> deliver) does not care whether
its messages arrive over MQTT (a site's mosquitto, a shared subscription) or over AMQP 0-9-1
(a RabbitMQ cluster's quorum queue, :mod:`.amqp`); each adapter implements :class:`Transport`.
Rules every adapter keeps:

- ``on_message`` runs on the adapter's own thread, one delivery at a time, in delivery order; or,
  when ``on_messages`` is given to :meth:`Transport.start`, that runs instead with the deliveries
  of one read burst as one list (MQTT: one loop turn's packets; AMQP: one ``process_data_events``
  call's), in delivery order: one hand-over per burst instead of one per message.
- ``ack``/``requeue``/``publish``/``pause``/``resume`` are thread-safe (the listener's commit
  thread calls them); a delivery received before a reconnect is silently not acknowledged (the
  broker delivers it again: the store's de-duplication makes that harmless).
- At most ``prefetch`` deliveries are outstanding (not acknowledged): the listener's memory is
  bounded by it, and a listener that stops acknowledging (its store is down) stops receiving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

__all__ = [
    "Delivery",
    "OnMessage",
    "OnMessages",
    "ReceiptPump",
    "Transport",
    "routing_key_to_topic",
    "topic_to_routing_key",
]


class Delivery(NamedTuple):
    """One message from the broker. ``topic`` is always in MQTT form (``idstation/v1/...``).
    Immutable; a named tuple rather than a frozen dataclass: one is made per message on the
    transport's thread, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per
    field) cost ~2x as much."""

    topic: str
    payload: bytes
    received_at: float
    redelivered: bool = False
    delivery_count: int = 0  # deliveries before this one, when the broker counts them (quorum queues)
    token: Any = None

    def __repr__(self) -> str:  # never the payload, never the token
        return f"Delivery(topic={self.topic!r}, redelivered={self.redelivered}, delivery_count={self.delivery_count})"


OnMessage = Callable[[Delivery], None]
OnMessages = Callable[[list[Delivery]], None]


class Transport(Protocol):
    def start(self, on_message: OnMessage, on_messages: OnMessages | None = None) -> None: ...
    def wait_ready(self, timeout: float) -> bool: ...
    def ack(self, deliveries: Sequence[Delivery]) -> None: ...
    def requeue(self, deliveries: Sequence[Delivery]) -> None: ...
    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...

    @property
    def connected(self) -> bool: ...


def topic_to_routing_key(topic: str) -> str:
    """RabbitMQ's MQTT plugin (3.10) maps an MQTT topic to a routing key by turning ``/`` into ``.``."""
    return topic.replace("/", ".")


def routing_key_to_topic(routing_key: str) -> str:
    """The inverse, exact when no name holds a dot. A dotted site or counter name (``hn.01``) turns
    into more routing-key words, comes back as a topic of the wrong shape and is rejected as
    ``bad_topic``: on a RabbitMQ deployment, site and counter names must not contain ``.``."""
    return routing_key.replace(".", "/")


class ReceiptPump:
    """Publishes due receipts through a transport from a thread of its own, so that the store
    reads and signatures of receipts never stall the thread that takes deliveries (the AMQP
    adapter's). ``receipts`` is a :class:`~idstation.mqtt.central.receipts.ReceiptBatcher`."""

    def __init__(self, receipts: Any, transport: Transport, *, tick: float = 0.02) -> None:
        self.receipts, self.transport, self.tick = receipts, transport, tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="receipt-pump", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            if self.receipts.pending():
                self.publish_due()

    def publish_due(self) -> int:
        """The receipts due now, handed to the transport together: ``publish_many`` when it has it
        (AMQP: one hand-over to its thread and one write for all of them, where one call per
        receipt woke that thread and wrote three frames each), else one ``publish`` each."""
        batch: list[tuple[str, bytes]] = []

        def collect(topic: str, payload: bytes) -> bool:
            if not self.transport.connected:
                return False  # stays due: goes out after the reconnect
            batch.append((topic, payload))
            return True

        sent = self.receipts.publish_due(collect)
        if batch:
            many = getattr(self.transport, "publish_many", None)
            if many is not None:
                many(batch, retain=True)
            else:
                for topic, payload in batch:
                    self.transport.publish(topic, payload, retain=True)
        return sent
