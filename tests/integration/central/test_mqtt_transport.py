"""The listener's MQTT transport on a real mosquitto: a persistent session's backlog is drained
through the buffered reader, the batch of PUBACKs written in one go reaches the broker, what was
not acknowledged comes back after a reconnect, and the listener's Receive Maximum is honoured."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho
import pytest
from idstation.mqtt.central.mqtt_transport import MqttTransport
from idstation.mqtt.central.transport import Delivery

from tests.fixtures.broker import needs_mosquitto

pytestmark = [pytest.mark.integration, needs_mosquitto]

TOPIC = "idstation/v1/hn01/c01/identity"


class Sink:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def count(self) -> int:
        with self._lock:
            return len(self.deliveries)


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _listen(url: str, client_id: str, sink: Sink, **options) -> MqttTransport:
    transport = MqttTransport(url, client_id, shared=False, protocol="5", **options)
    transport.start(sink)
    assert transport.wait_ready(10)
    return transport


def _offline_session(url: str, client_id: str, **options) -> None:
    _listen(url, client_id, Sink(), **options).stop()


def _publish(port: int, payloads: list[bytes]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-box", protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(TOPIC, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(20)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_backlog_is_drained_whole_and_its_batched_acknowledgements_reach_the_broker(mosquitto) -> None:
    _offline_session(mosquitto.url, "central-drain")
    payloads = [f"event-{i}".encode() * 10 for i in range(3000)]
    payloads[100] = b"L" * 300_000  # larger than the 64 KiB read buffer: read across many recv()
    _publish(mosquitto.port, payloads)
    sink = Sink()
    transport = _listen(mosquitto.url, "central-drain", sink)
    try:
        acked = 0
        for _ in range(2000):  # bounded: acknowledge each delivery once, in batches, as the commit thread does
            if acked == len(payloads):
                break
            if not _wait(lambda n=acked: sink.count() > n, 10):
                break
            upto = sink.count()
            transport.ack(sink.deliveries[acked:upto])
            acked = upto
        assert acked == len(payloads)
        assert sorted(d.payload for d in sink.deliveries) == sorted(payloads)
        assert {d.topic for d in sink.deliveries} == {TOPIC}
    finally:
        transport.stop()
    again = Sink()
    transport = _listen(mosquitto.url, "central-drain", again)
    try:
        time.sleep(1.0)  # anything unacknowledged would be sent again at once
        assert again.count() == 0
    finally:
        transport.stop()


def test_what_was_not_acknowledged_comes_back_after_a_reconnect(mosquitto) -> None:
    _offline_session(mosquitto.url, "central-partial")
    payloads = [f"event-{i}".encode() for i in range(40)]
    _publish(mosquitto.port, payloads)
    sink = Sink()
    transport = _listen(mosquitto.url, "central-partial", sink)
    try:
        assert _wait(lambda: sink.count() == 40, 10)
        transport.ack(sink.deliveries[:25])
    finally:
        transport.stop()
    again = Sink()
    transport = _listen(mosquitto.url, "central-partial", again)
    try:
        assert _wait(lambda: again.count() >= 15, 10)
        time.sleep(0.3)
        assert sorted(d.payload for d in again.deliveries) == sorted(payloads[25:])
    finally:
        transport.stop()


def test_the_broker_keeps_to_the_receive_maximum_the_listener_asks_for(mosquitto) -> None:
    _offline_session(mosquitto.url, "central-window", receive_maximum=50)
    _publish(mosquitto.port, [f"event-{i}".encode() for i in range(300)])
    sink = Sink()
    transport = _listen(mosquitto.url, "central-window", sink, receive_maximum=50)
    try:
        assert _wait(lambda: sink.count() >= 50, 10)
        time.sleep(0.5)
        assert sink.count() == 50  # the test broker's own window is 100
    finally:
        transport.stop()


def test_with_on_messages_a_backlog_arrives_as_lists_whole_and_in_order(mosquitto) -> None:
    _offline_session(mosquitto.url, "central-bursts")
    payloads = [f"event-{i:04d}".encode() for i in range(2000)]
    _publish(mosquitto.port, payloads)
    bursts: list[list[Delivery]] = []
    lock = threading.Lock()

    def on_messages(deliveries: list[Delivery]) -> None:
        with lock:
            bursts.append(deliveries)
        transport.ack(deliveries)

    def taken() -> int:
        with lock:
            return sum(map(len, bursts))

    transport = MqttTransport(mosquitto.url, "central-bursts", shared=False, protocol="5")
    transport.start(lambda _d: pytest.fail("on_message is not used when on_messages is given"), on_messages)
    try:
        assert _wait(lambda: taken() >= len(payloads), 20)
    finally:
        transport.stop()
    got = [d.payload for burst in bursts for d in burst]
    assert got == payloads  # one publisher, one session: the broker's order is kept
    assert len(bursts) < len(payloads) / 5  # many deliveries per hand-over
