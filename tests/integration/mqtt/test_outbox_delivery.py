"""The outbox on a real mosquitto: one PUBLISH per event when nothing goes wrong, and a corrupt
outbox's intact rows still delivered."""

from __future__ import annotations

import collections
import os
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from idstation.mqtt.outbox import Lane
from idstation.mqtt.seal import decode_frame
from paho.mqtt.properties import Properties

from .helpers import PRIVATE, Collector, make_publisher, wait_for

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


def test_every_intact_row_of_a_corrupted_outbox_is_delivered_and_counted_in_the_alarm(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    device = enrol()
    outbox = tmp_path / "ob.sqlite"
    offline = make_publisher("mqtt://127.0.0.1:1", device, central_key.public, outbox)  # never connects
    stored = [offline.submit_identity(PRIVATE) for _ in range(60)]
    offline.stop(0.1)
    pages = outbox.stat().st_size // 4096
    with open(outbox, "r+b") as f:  # two pages of garbage in the middle of the file
        for page in (pages // 3, pages // 2):
            f.seek(page * 4096)
            f.write(os.urandom(4096))
    with Collector(mosquitto.url, registry, central_key.path, tmp_path / "state.sqlite") as central:
        pub = make_publisher(mosquitto.url, device, central_key.public, outbox)
        report = pub.outbox.salvage
        assert report is not None and 30 <= report.salvaged < 60
        salvaged = [r.event_id for lane in (Lane.LIVE, Lane.BACKLOG) for r in pub.outbox.pending(lane, 100)]
        assert len(salvaged) == report.salvaged and set(salvaged) <= set(stored)
        pub.start()
        assert wait_for(lambda: set(salvaged) <= set(central.ids()), 30)

        def alarm() -> dict | None:
            for event in central.events:
                if event.kind == "status" and event.header["info"].get("alarm") == "outbox_corrupt":
                    return event.header["info"]
            return None

        assert wait_for(lambda: alarm() is not None, 10)
        pub.stop()
    assert alarm()["salvaged"] == report.salvaged
    assert alarm()["damaged"] == report.damaged
