"""The box keeps each data event until the centre's signed receipt covers it (real mosquitto,
the real listener with receipts on): a centre that never subscribed, forged receipts, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.receipt import build_receipt, receipt_topic
from idstation.mqtt.seal import Signer, decode_frame
from paho.mqtt.properties import Properties

from .helpers import PRIVATE, Collector, make_publisher, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
RECEIPT_KEY = Ed25519PrivateKey.generate()
FAST = {"receipt_timeout_s": 1.0, "receipt_backoff_max_s": 2.0}


def _receipt_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "receipt_keys.pem"
    pem = RECEIPT_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.write_bytes(pem)
    return path


def _central(url: str, registry, central_key, tmp_path: Path, protocol: str = "auto") -> Collector:
    state, signer = tmp_path / "state.sqlite", Signer(RECEIPT_KEY)
    return Collector(url, registry, central_key.path, state, receipt_signer=signer, protocol=protocol)


def _retain(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="forger", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port, properties=Properties(1))
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_centre_that_never_subscribed_still_gets_every_event_once(  # noqa: PLR0917 - fixtures
    mosquitto, registry, central_key, enrol, tmp_path, protocol: str
) -> None:
    device = enrol()
    pub = make_publisher(
        mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite", receipt_keys=[RECEIPT_KEY.public_key()],
        protocol=protocol, **FAST,
    )  # fmt: skip
    pub.start()
    ids = [pub.submit_identity(PRIVATE) for _ in range(10)]
    # nobody subscribed: the broker answers "no matching subscribers" and keeps nothing; the box keeps all
    assert wait_for(lambda: pub.stats()["outbox"]["awaiting_receipt"] == 10, 20)
    assert pub.stats()["outbox"]["total"] == 10
    with _central(mosquitto.url, registry, central_key, tmp_path, protocol) as central:
        assert pub.drain(60), pub.stats()
        accepted = [e.event_id for e in central.events if e.kind == "identity"]
    receipted = pub.stats()["receipts"]["events_receipted"]
    pub.stop()
    assert sorted(accepted) == sorted(ids)  # each once: resends after the first are duplicates
    assert receipted == 10


def test_forged_receipts_are_ignored_and_the_events_kept(mosquitto, registry, central_key, enrol, tmp_path) -> None:
    device = enrol()
    rec = device.record
    pub = make_publisher(
        mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite", receipt_keys=_receipt_key_file(tmp_path)
    )
    pub.start()
    for _ in range(5):
        pub.submit_identity(PRIVATE)
    assert wait_for(lambda: pub.stats()["outbox"]["awaiting_receipt"] == 5, 20)
    topic = receipt_topic(rec.site, rec.counter)
    right = Signer(RECEIPT_KEY)
    forgeries = {
        "unknown_key": build_receipt(rec.device_id, rec.key_id, 5, [], Signer(Ed25519PrivateKey.generate())),
        "other_device": build_receipt("box-9", rec.key_id, 5, [], right),
        "other_key": build_receipt(rec.device_id, "ed25519:0000000000000000", 5, [], right),
        "never_sent": build_receipt(rec.device_id, rec.key_id, 6, [], right),
    }
    for payload in forgeries.values():
        _retain(mosquitto.port, topic, payload)
    assert wait_for(lambda: set(pub.stats()["receipts"]["ignored"]) == set(forgeries), 20), pub.stats()["receipts"]
    assert pub.stats()["outbox"]["awaiting_receipt"] == 5
    _retain(mosquitto.port, topic, build_receipt(rec.device_id, rec.key_id, 3, [5], right))  # the genuine one
    assert wait_for(lambda: pub.stats()["outbox"]["total"] == 1, 20)
    pub.stop()


def test_events_waiting_for_receipts_survive_a_kill_9_and_are_resent(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    device = enrol()
    rec = device.record
    outbox, keys = tmp_path / "ob.sqlite", _receipt_key_file(tmp_path)
    argv = [
        sys.executable, "-m", "tests.integration.mqtt.box_proc", mosquitto.url, rec.device_id, rec.site,
        rec.counter, str(device.key_path), str(central_key.path), str(outbox), "8", str(keys),
    ]  # fmt: skip
    box = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [box.stdout.readline().strip() for _ in range(9)]
    finally:
        os.kill(box.pid, signal.SIGKILL)
        box.wait(10)
        box.stdout.close()
    assert lines[-1] == "at_broker", lines
    ids = lines[:8]
    with _central(mosquitto.url, registry, central_key, tmp_path) as central:
        pub = make_publisher(mosquitto.url, device, central_key.public, outbox, receipt_keys=keys, **FAST)
        assert pub.stats()["outbox"]["total"] == 8  # nothing was lost by the kill
        pub.start()
        assert pub.drain(90), pub.stats()
        accepted = [e.event_id for e in central.events if e.kind == "identity"]
        pub.stop()
    assert sorted(accepted) == sorted(ids)


def test_a_broker_restarted_without_persistence_loses_nothing_not_yet_receipted(
    broker_factory, registry, central_key, enrol, tmp_path
) -> None:
    broker = broker_factory(persistence=False)
    device = enrol()
    options = {"client_id": "central-1", "shared": False, "receipt_signer": Signer(RECEIPT_KEY)}
    state = tmp_path / "state.sqlite"
    with Collector(broker.url, registry, central_key.path, state, **options):
        pass  # the centre's persistent session now exists at the broker
    pub = make_publisher(
        broker.url, device, central_key.public, tmp_path / "ob.sqlite", receipt_keys=[RECEIPT_KEY.public_key()],
        **FAST,
    )  # fmt: skip
    pub.start()
    ids = [pub.submit_identity(PRIVATE) for _ in range(6)]
    # queued by the broker for the absent centre: PUBACK says success, the box still keeps them
    assert wait_for(lambda: pub.stats()["outbox"]["awaiting_receipt"] == 6, 20)
    broker.restart()  # no persistence: the queued events are gone from the broker
    with Collector(broker.url, registry, central_key.path, state, **options) as central:
        assert pub.drain(60), pub.stats()
        accepted = [e.event_id for e in central.events if e.kind == "identity"]
    pub.stop()
    assert sorted(accepted) == sorted(ids)


def test_events_waiting_too_long_for_a_receipt_raise_an_alarm(mosquitto, central_key, enrol, tmp_path) -> None:
    device = enrol()
    rec = device.record
    alarms: list[dict] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher", protocol=mqtt.MQTTv5)

    def on_message(_c, _u, message) -> None:
        info = decode_frame(message.payload).header.get("info", {})
        if info.get("alarm") == "no_receipt":
            alarms.append(info)

    watcher.on_message = on_message
    watcher.connect("127.0.0.1", mosquitto.port, properties=Properties(1))
    watcher.subscribe(f"idstation/v1/{rec.site}/{rec.counter}/status", qos=1)
    watcher.loop_start()
    pub = make_publisher(
        mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite", receipt_keys=[RECEIPT_KEY.public_key()],
        receipt_timeout_s=600.0, receipt_alarm_s=1.0,
    )  # fmt: skip
    pub.start()
    pub.submit_identity(PRIVATE)
    try:
        assert wait_for(lambda: bool(alarms), 30), "no no_receipt alarm"
    finally:
        pub.stop()
        watcher.disconnect()
        watcher.loop_stop()
    assert alarms[0]["awaiting_receipt"] == 1 and alarms[0]["oldest_awaiting_s"] >= 1.0


def test_a_centre_session_that_expires_while_the_box_goes_on_loses_nothing(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    device = enrol()
    options = {
        "client_id": "central-expiring",
        "shared": False,
        "protocol": "5",
        "session_expiry": 2,
        "receipt_signer": Signer(RECEIPT_KEY),
    }
    state = tmp_path / "state.sqlite"
    with Collector(mosquitto.url, registry, central_key.path, state, **options):
        pass  # a session that the broker forgets 2 s after the centre left
    pub = make_publisher(
        mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite", receipt_keys=[RECEIPT_KEY.public_key()],
        **FAST,
    )  # fmt: skip
    pub.start()
    ids = [pub.submit_identity(PRIVATE) for _ in range(6)]
    assert wait_for(lambda: pub.stats()["outbox"]["awaiting_receipt"] == 6, 20)  # queued for the session
    time.sleep(4.0)  # the session (and what the broker queued for it) expires
    with Collector(mosquitto.url, registry, central_key.path, state, **options) as central:
        assert pub.drain(60), pub.stats()
        accepted = [e.event_id for e in central.events if e.kind == "identity"]
    pub.stop()
    assert sorted(accepted) == sorted(ids)


def test_a_huge_message_on_the_receipt_topic_never_reaches_the_box(mosquitto, central_key, enrol, tmp_path) -> None:
    device = enrol()
    rec = device.record
    pub = make_publisher(
        mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite", receipt_keys=[RECEIPT_KEY.public_key()],
        protocol="5",
    )  # fmt: skip
    pub.start()
    pub.submit_identity(PRIVATE)
    assert wait_for(lambda: pub.stats()["outbox"]["awaiting_receipt"] == 1, 20)
    topic = receipt_topic(rec.site, rec.counter)
    _retain(mosquitto.port, topic, b"IDS1" + b"\0" * (8 * 1024 * 1024))  # dropped by the broker for the box
    _retain(mosquitto.port, topic, build_receipt(rec.device_id, rec.key_id, 1, [], Signer(RECEIPT_KEY)))
    assert wait_for(lambda: pub.stats()["outbox"]["total"] == 0, 20)
    ignored = pub.stats()["receipts"]["ignored"]
    pub.stop()
    assert ignored == {}  # the 8 MB message was never delivered to the box (else: "malformed")


def test_after_a_salvaged_outbox_the_receipts_move_past_the_lost_numbers(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    device = enrol()
    outbox = tmp_path / "ob.sqlite"
    offline = make_publisher("mqtt://127.0.0.1:1", device, central_key.public, outbox)  # never connects
    for _ in range(60):
        offline.submit_identity(PRIVATE)
    offline.stop(0.1)
    pages = outbox.stat().st_size // 4096
    with open(outbox, "r+b") as f:  # a page of garbage in the middle: some numbers are lost for good
        f.seek(pages // 2 * 4096)
        f.write(os.urandom(4096))
    with _central(mosquitto.url, registry, central_key, tmp_path) as central:
        pub = make_publisher(
            mosquitto.url, device, central_key.public, outbox, receipt_keys=[RECEIPT_KEY.public_key()], **FAST
        )
        assert pub.outbox.salvage is not None and pub.outbox.salvage.salvaged < 60
        pub.start()
        assert pub.drain(60), pub.stats()  # every salvaged event receipted despite the holes
        latest = pub.submit_identity(PRIVATE)  # its seq resumes past the reservation: another hole
        assert wait_for(lambda: latest in central.ids(), 20)
        pub.heartbeat()  # says seq_floor: nothing below it will ever come
        last = pub.outbox.last_seq
        assert wait_for(lambda: pub.stats()["receipts"]["last_upto"] == last, 20), pub.stats()["receipts"]
        pub.stop()
