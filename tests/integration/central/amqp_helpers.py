"""Helpers for the clustered-broker tests: an MQTT box that publishes and an AMQP collector."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
import pika
from idstation.mqtt.central.amqp import AmqpTransport
from idstation.mqtt.central.transport import Delivery


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def mqtt_client(url: str, client_id: str, *, clean: bool = True) -> Any:
    host, port = url.removeprefix("mqtt://").split(":")
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311, clean_session=clean
    )
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    return client


def purge(amqp_url: str, *queues: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        for queue in queues:
            try:
                channel.queue_purge(queue)
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                channel = conn.channel()
    finally:
        conn.close()


def queue_depth(amqp_url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        conn.close()


class Collector:
    """An AmqpTransport whose handler records deliveries and acknowledges them (unless told not to)."""

    def __init__(self, urls: list[str], *, prefetch: int = 50, handler: Callable[[Any, Delivery], bool] | None = None):
        self.transport = AmqpTransport(urls, prefetch=prefetch)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._handler = handler

    def _on(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)
        if self._handler is None or self._handler(self.transport, delivery):
            self.transport.ack([delivery])

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [d.payload for d in self.deliveries]

    def __enter__(self) -> Collector:
        self.transport.start(self._on)
        assert self.transport.wait_ready(30), "the AMQP consumer did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        self.transport.stop()
