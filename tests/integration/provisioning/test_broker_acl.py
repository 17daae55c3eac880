"""The broker configuration the product ships (init-ca's mosquitto.conf, claim.acl and the
registry-driven device.acl) isolates boxes on a real mosquitto: a box cannot publish under another
counter's topics, nor read another counter's receipts, nor write receipts; the centre reads all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from idstation.mqtt.receipt import receipt_topic
from idstation.mqtt.topics import SUBSCRIPTION, topic_for
from idstation.provisioning.bundle import apply_bundle
from idstation.provisioning.identity import init_device
from paho.mqtt.properties import Properties

from .conftest import PASSWORDS, Central

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87
SITE = "hn-bd-001"


class Client:
    """A bare MQTT 5 client on the shipped listeners (mTLS box, or the centre's username/password)."""

    def __init__(self, port: int, ca: str, *, cert: tuple[str, str] | None = None, user: str | None = None) -> None:
        self.acks: dict[int, int] = {}
        self.granted: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{id(self)}", protocol=mqtt.MQTTv5)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self.granted.__setitem__(mid, [r.value for r in rcs])
        self.client.on_message = lambda _c, _u, msg: self.messages.append((msg.topic, msg.payload))
        if user:
            self.client.username_pw_set(user, PASSWORDS[user])
        self.client.tls_set(ca_certs=ca, certfile=cert[0] if cert else None, keyfile=cert[1] if cert else None)
        self.client.connect("localhost", port, properties=Properties(1))
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert _wait(lambda: info.mid in self.acks), "no PUBACK"
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> list[int]:
        _rc, mid = self.client.subscribe(topic, qos=1)
        assert _wait(lambda: mid in self.granted), "no SUBACK"
        return self.granted[mid]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _enrol_box(tmp_path: Path, central: Central, counter: str) -> tuple[str, str]:
    state = tmp_path / counter
    box = init_device(state, site=SITE, counter=counter, fleet_ca_fingerprint=central.ca.fingerprint)
    csr = (box.device.identity_dir / "device.csr").read_bytes()
    identity = apply_bundle(state, central.enroller.enroll(csr, site=SITE, counter=counter).to_bytes())
    return str(identity.tls_cert_path), str(identity.tls_key_path)


@pytest.fixture
def boxes(tmp_path: Path, central: Central) -> dict[str, Client]:
    certs = {counter: _enrol_box(tmp_path, central, counter) for counter in ("c01", "c02")}
    central.reload()  # SIGHUP: mosquitto reads the regenerated device.acl
    time.sleep(0.5)
    ca = str(central.ca.directory / "ca.crt")
    clients = {
        "centre": Client(central.claim_port, ca, user="central"),
        "a": Client(central.device_port, ca, cert=certs["c01"]),
        "b": Client(central.device_port, ca, cert=certs["c02"]),
    }
    yield clients
    for client in clients.values():
        client.close()


def test_a_box_publishing_under_another_counter_is_refused_and_never_reaches_the_centre(boxes) -> None:
    centre, a = boxes["centre"], boxes["a"]
    assert centre.subscribe(SUBSCRIPTION) == [1]
    assert a.publish(topic_for(SITE, "c02", "identity"), b"forged under c02") == NOT_AUTHORIZED
    assert a.publish(topic_for(SITE, "c01", "identity"), b"own counter") < 0x80
    assert _wait(lambda: any(t == topic_for(SITE, "c01", "identity") for t, _ in centre.messages))
    assert [t for t, _ in centre.messages] == [topic_for(SITE, "c01", "identity")]


def test_a_box_cannot_read_another_counters_receipts_nor_write_receipts(boxes) -> None:
    centre, a, b = boxes["centre"], boxes["a"], boxes["b"]
    assert a.publish(receipt_topic(SITE, "c01"), b"forged receipt") == NOT_AUTHORIZED  # only the centre writes them
    assert centre.publish(receipt_topic(SITE, "c02"), b"receipt for c02", retain=True) < 0x80
    a.subscribe(receipt_topic(SITE, "c02"))  # mosquitto may grant it: its ACL filters every delivery
    a.subscribe(f"idstation/v1/{SITE}/+/receipt")
    assert b.subscribe(receipt_topic(SITE, "c02")) == [1]
    assert _wait(lambda: b.messages)
    assert b.messages == [(receipt_topic(SITE, "c02"), b"receipt for c02")]
    assert centre.publish(receipt_topic(SITE, "c02"), b"next receipt for c02", retain=True) < 0x80
    assert _wait(lambda: len(b.messages) == 2)
    assert a.messages == []  # neither the retained receipt nor the live one reached box A
