"""Security through a real broker: forged, replayed, unknown, revoked and misplaced events never pass."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.agent.sim.broker import BrokerTls
from idstation.mqtt.central.broker_config import single_listener_acl
from idstation.mqtt.connection import TlsOptions
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for
from paho.mqtt.properties import Properties

from .helpers import PRIVATE, Collector, make_publisher, wait_for

pytestmark = pytest.mark.integration


class RawClient:
    """A bare MQTT 5 client that publishes whatever bytes it is given (the attacker)."""

    def __init__(self, port: int, client_id: str = "raw", username: str | None = None, **tls) -> None:
        self.acks: dict[int, int] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)
        if username:
            self.client.username_pw_set(username)
        if tls:
            self.client.tls_set(**tls)
        self.client.connect("127.0.0.1", port, properties=Properties(1))
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        assert wait_for(lambda: info.mid in self.acks, 5)
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _builder(device, central_key) -> EventBuilder:
    rec = device.record
    return EventBuilder(rec.device_id, rec.site, rec.counter, Signer(device.key), central_key.public)


def test_forged_replayed_unknown_revoked_and_misplaced_events_are_rejected(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    box1, box2 = enrol("box-1", "hn-01", "c01"), enrol("box-2", "hn-01", "c02")
    b1, b2 = _builder(box1, central_key), _builder(box2, central_key)
    t1 = topic_for("hn-01", "c01", "identity")
    stranger = EventBuilder("box-9", "hn-01", "c01", Signer(Ed25519PrivateKey.generate()), central_key.public)
    genuine = b1.build("identity", 1, private=PRIVATE)
    forged = bytearray(b1.build("identity", 2, private=PRIVATE).frame)
    forged[40] ^= 0x20
    raw = RawClient(mosquitto.port)
    with Collector(mosquitto.url, registry, central_key.path, tmp_path / "state.sqlite") as central:
        raw.publish(t1, genuine.frame)
        raw.publish(t1, genuine.frame)  # replayed as captured
        raw.publish(t1, bytes(forged))
        raw.publish(t1, stranger.build("identity", 1, private=PRIVATE).frame)
        raw.publish(t1, b2.build("identity", 1, private=PRIVATE).frame)  # box-2 under box-1's counter
        registry.revoke("box-2")
        raw.publish(topic_for("hn-01", "c02", "identity"), b2.build("identity", 2, private=PRIVATE).frame)
        assert wait_for(lambda: len(central.rejected) >= 5, 10)
        raw.close()
    assert central.ids() == [genuine.event_id]
    assert sorted(central.reasons()) == sorted(
        ["duplicate", "bad_signature", "unknown_device", "wrong_topic", "revoked_device"]
    )


def test_the_broker_acl_stops_a_device_publishing_under_another_counter(
    broker_factory, registry, central_key, enrol, tmp_path
) -> None:
    box1, box2 = enrol("box-1", "hn-01", "c01"), enrol("box-2", "hn-01", "c02")
    broker = broker_factory(acl=single_listener_acl(registry))
    raw = RawClient(broker.port, "box-2", username="box-2")
    try:
        own = _builder(box2, central_key).build("identity", 1, private=PRIVATE).frame
        assert raw.publish(topic_for("hn-01", "c02", "identity"), own) < 0x80  # its own topic: accepted
        assert raw.publish(topic_for("hn-01", "c01", "identity"), own) == 0x87  # another's: Not authorized
    finally:
        raw.close()
    assert box1.record.counter == "c01"


def test_mutual_tls_delivers_and_refuses_clients_without_a_certificate(
    broker_factory, registry, central_key, enrol, dev_pki
) -> None:
    tmp_path = registry.path.parent
    device = enrol("box-1", "hn-01", "c01")
    tls = BrokerTls(dev_pki.ca_file, dev_pki.server_cert, dev_pki.server_key, require_client_cert=True)
    broker = broker_factory(tls=tls, acl=single_listener_acl(registry))
    assert broker.url.startswith("mqtts://")
    central_tls = TlsOptions(dev_pki.ca_file, *dev_pki.clients["central"])
    box_tls = TlsOptions(dev_pki.ca_file, *dev_pki.clients["box-1"])
    with Collector(broker.url, registry, central_key.path, tmp_path / "state.sqlite", tls=central_tls) as central:
        pub = make_publisher(broker.url, device, central_key.public, tmp_path / "ob.sqlite", tls=box_tls)
        pub.start()
        event_id = pub.submit_identity(PRIVATE)
        assert pub.drain(10)
        assert wait_for(lambda: event_id in central.ids(), 10)
        pub.stop()
        anonymous = make_publisher(
            broker.url, device, central_key.public, tmp_path / "ob2.sqlite", tls=TlsOptions(dev_pki.ca_file)
        )
        anonymous.start()
        anonymous.submit_identity(PRIVATE)
        time.sleep(1.5)
        assert not anonymous.stats()["connected"]
        assert anonymous.stats()["outbox"]["total"] >= 1  # kept, never dropped
        anonymous.stop(0.5)
