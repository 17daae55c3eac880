"""The listener records before it speaks: store commit, then broker ack, then delivery; a store
outage pauses consumption and loses nothing (real mosquitto, SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading

import paho.mqtt.client as mqtt
import pytest
from idstation.mqtt.central.listener import AcceptedEvent, CentralListener
from idstation.mqtt.central.store import open_store
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for
from paho.mqtt.properties import Properties

from ..helpers import PRIVATE, wait_for

pytestmark = pytest.mark.integration


class Box:
    """A device that publishes signed frames straight to the broker (QoS 1, waits for PUBACK)."""

    def __init__(self, port: int, device, central_public) -> None:
        rec = device.record
        self.builder = EventBuilder(rec.device_id, rec.site, rec.counter, Signer(device.key), central_public)
        self.topic = topic_for(rec.site, rec.counter, "identity")
        self.acked: set[int] = set()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"box-{rec.device_id}", protocol=5)
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self.acked.add(mid)
        self.client.connect("127.0.0.1", port, properties=Properties(1))
        self.client.loop_start()

    def send(self, seqs: list[int]) -> list[str]:
        ids = []
        for seq in seqs:
            event = self.builder.build("identity", seq, private=PRIVATE)
            info = self.client.publish(self.topic, event.frame, qos=1)
            assert wait_for(lambda info=info: info.mid in self.acked, 10)
            ids.append(event.event_id)
        return ids

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Sink:
    """on_event: checks the event is already committed when it is delivered."""

    def __init__(self, store_url: str) -> None:
        self.reader = open_store(store_url)
        self.ids: list[str] = []
        self.uncommitted: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, event: AcceptedEvent) -> None:
        stored = self.reader.events_after(event.cursor - 1, 1) if event.cursor else []
        with self.lock:
            if not stored or stored[0].event_id != event.event_id:
                self.uncommitted.append(event.event_id)
            self.ids.append(event.event_id)

    def count(self) -> int:
        with self.lock:
            return len(self.ids)


def _listener(mosquitto, registry, central_key, store_url: str, sink: Sink) -> CentralListener:
    return CentralListener(
        mosquitto.url, registry, central_key.path, on_event=sink, store=store_url, shared=False, max_wait=0.02
    )


def test_each_delivered_event_is_already_committed_and_the_store_holds_each_once(
    mosquitto, registry, central_key, enrol, store_url
) -> None:
    sink = Sink(store_url)
    listener = _listener(mosquitto, registry, central_key, store_url, sink)
    listener.start()
    assert listener.wait_ready(15)
    box = Box(mosquitto.port, enrol(), central_key.public)
    seqs = list(range(1, 41))
    random.Random(3).shuffle(seqs)  # any order: gaps open and fill
    sent = box.send(seqs)
    assert wait_for(lambda: sink.count() >= len(sent), 30)
    box.close()
    listener.stop()
    assert sorted(sink.ids) == sorted(sent)
    assert sink.uncommitted == []
    stored = sink.reader.events_after(0, 1000)
    assert sorted(e.event_id for e in stored) == sorted(sent)
    assert sink.reader.gaps() == []
    sink.reader.close()


def test_a_postgresql_outage_pauses_consumption_and_loses_nothing(  # noqa: PLR0917 - fixtures
    mosquitto, registry, central_key, enrol, postgres_server, postgres_url
) -> None:
    sink = Sink(postgres_url)
    listener = _listener(mosquitto, registry, central_key, postgres_url, sink)
    listener.start()
    assert listener.wait_ready(15)
    box = Box(mosquitto.port, enrol(), central_key.public)
    before = box.send([1, 2, 3])
    assert wait_for(lambda: sink.count() == 3, 30)
    postgres_server.stop()
    during = box.send(list(range(4, 14)))  # the broker holds them for the listener's session
    assert wait_for(listener.intake.store_down.is_set, 30)
    assert sink.count() == 3  # nothing is delivered (or acknowledged) while the store is down
    postgres_server.start()
    assert wait_for(lambda: sink.count() >= 13, 60)
    box.close()
    listener.stop()
    assert sorted(sink.ids) == sorted(before + during)  # each once
    assert sink.uncommitted == []
    assert sink.reader.max_seq(box.builder.device_id) == 13
    assert sink.reader.gaps() == []
    sink.reader.close()


def test_two_listeners_sharing_one_postgresql_keep_the_stream_exact(
    mosquitto, registry, central_key, enrol, postgres_url
) -> None:
    sinks = [Sink(postgres_url), Sink(postgres_url)]
    listeners = [
        CentralListener(
            mosquitto.url, registry, central_key.path, on_event=sink, store=postgres_url, group="g", max_wait=0.02
        )
        for sink in sinks
    ]  # one MQTT 5 shared subscription: the broker spreads the device's events over both
    for listener in listeners:
        listener.start()
        assert listener.wait_ready(15)
    box = Box(mosquitto.port, enrol(), central_key.public)
    seqs = list(range(1, 61))
    random.Random(5).shuffle(seqs)
    sent = box.send(seqs)
    assert wait_for(lambda: sum(s.count() for s in sinks) >= len(sent), 60)
    box.close()
    for listener in listeners:
        listener.stop()
    assert all(s.count() > 0 for s in sinks)  # both did work
    assert sorted(sinks[0].ids + sinks[1].ids) == sorted(sent)
    reader = sinks[0].reader
    assert reader.gaps() == [] and reader.max_seq(box.builder.device_id) == 60
    assert len(reader.events_after(0, 1000)) == 60
    for sink in sinks:
        sink.reader.close()


def test_a_batch_that_fails_after_its_commit_is_delivered_again_and_printed_once(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    store_url = f"sqlite://{tmp_path / 'central.sqlite'}"
    sink = Sink(store_url)
    failures = []

    def metrics_hook_failing_once(size: int, _seconds: float) -> None:  # the owner's hook, after the commit
        if not failures:
            failures.append(size)
            raise RuntimeError("metrics backend down")

    listener = CentralListener(
        mosquitto.url, registry, central_key.path, on_event=sink, store=store_url, shared=False,
        client_id="centre-fail-once", on_batch=metrics_hook_failing_once,
    )  # fmt: skip
    listener.start()
    assert listener.wait_ready(15)
    box = Box(mosquitto.port, enrol(), central_key.public)
    sent = box.send([1, 2, 3])
    assert wait_for(lambda: sink.count() >= 3, 60)  # not acked -> reconnect -> redelivered -> delivered now
    box.close()
    listener.stop()
    assert failures and sorted(sink.ids) == sorted(sent)
    sink.reader.close()
