"""The outbox on a real mosquitto: one PUBLISH per event when nothing goes wrong, and a corrupt
outbox's intact rows still delivered."""

from __future__ import annotations

import collections
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from idstation.mqtt.seal import decode_frame
from paho.mqtt.properties import Properties

from .helpers import PRIVATE, make_publisher, wait_for

pytestmark = pytest.mark.integration


class Counter:
    """A plain subscriber that counts the PUBLISHes it receives per event id."""

    def __init__(self, port: int, topic: str = "idstation/v1/+/+/+") -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        self.kinds: dict[str, str] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="counter", protocol=mqtt.MQTTv5)
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port, properties=Properties(1))
        self.client.loop_start()
        assert self.ready.wait(10)

    def _message(self, _c, _u, message) -> None:
        if message.retain:
            return
        header = decode_frame(message.payload).header
        with self._lock:
            self.seen[header["event_id"]] += 1
            self.kinds[header["event_id"]] = header["kind"]

    def counts(self, ids: list[str]) -> list[int]:
        with self._lock:
            return [self.seen[i] for i in ids]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_forty_events_without_a_fault_are_published_once_each(mosquitto, enrol, central_key, tmp_path) -> None:
    device = enrol()
    counter = Counter(mosquitto.port)
    pub = make_publisher(mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite")
    pub.start()
    assert pub.wait_connected(10)
    try:
        ids: list[str] = []
        for round_ in range(3):
            for n in range(40):
                ids.append(pub.submit_identity(PRIVATE))
                if n % 7 == round_:
                    time.sleep(0.003)  # let the pump and the fresh path interleave
            assert pub.drain(30)
        assert wait_for(lambda: all(c >= 1 for c in counter.counts(ids)), 20)
        time.sleep(0.5)  # a late second copy would be on its way by now
        doubles = [c for c in counter.counts(ids) if c != 1]
        assert doubles == [], f"{len(doubles)} of {len(ids)} events published more than once"
    finally:
        pub.stop()
        counter.close()
