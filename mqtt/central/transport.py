"""The listener's transport port: where deliveries come from and where receipts go.

The batching listener (verify -> record -> ack -> receipts -> deliver) does not care whether
its messages arrive over MQTT (a site's mosquitto, a shared subscription) or over AMQP 0-9-1
(a RabbitMQ cluster's quorum queue, :mod:`.amqp`); each adapter implements :class:`Transport`.
Rules every adapter keeps:

- ``on_message`` runs on the adapter's own thread, one delivery at a time, in delivery order.
- ``ack``/``requeue``/``publish``/``pause``/``resume`` are thread-safe (the listener's commit
  thread calls them); a delivery received before a reconnect is silently not acknowledged (the
  broker delivers it again: the store's de-duplication makes that harmless).
- At most ``prefetch`` deliveries are outstanding (not acknowledged): the listener's memory is
  bounded by it, and a listener that stops acknowledging (its store is down) stops receiving.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Delivery", "OnMessage", "Transport", "routing_key_to_topic", "topic_to_routing_key"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message from the broker. ``topic`` is always in MQTT form (``idstation/v1/...``)."""

    topic: str
    payload: bytes = field(repr=False)
    received_at: float
    redelivered: bool = False
    delivery_count: int = 0  # deliveries before this one, when the broker counts them (quorum queues)
    token: Any = field(default=None, repr=False)


OnMessage = Callable[[Delivery], None]


class Transport(Protocol):
    def start(self, on_message: OnMessage) -> None: ...
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
