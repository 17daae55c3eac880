"""The centre's receipts through a real mosquitto: signed, retained, per device, after the commit."""

from __future__ import annotations

import queue
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.receipt import Receipt, parse_receipt, receipt_topic
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for

from .helpers import PRIVATE, Collector, wait_for

pytestmark = pytest.mark.integration
RECEIPT_KEY = Ed25519PrivateKey.generate()


class Box:
    """A bare device: publishes signed frames and collects the receipts on its receipt topic."""

    def __init__(self, url: str, device: Any, central_public: Any, protocol: int) -> None:
        rec = device.record
        self.builder = EventBuilder(rec.device_id, rec.site, rec.counter, Signer(device.key), central_public)
        self.site, self.counter = rec.site, rec.counter
        self.receipts: queue.Queue[bytes] = queue.Queue()
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"box-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        self.client.on_message = lambda _c, _u, m: self.receipts.put(m.payload)
        self.client.connect(host, int(port))
        self.client.subscribe(receipt_topic(self.site, self.counter), qos=1)
        self.client.loop_start()
        self.seq = 0

    def send(self, kind: str = "identity") -> bytes:
        self.seq += 1
        extra: dict[str, Any] = {"private": PRIVATE} if kind == "identity" else {"reason": "no_card", "detail": ""}
        frame = self.builder.build(kind, self.seq, **extra).frame
        self.resend(kind, frame)
        return frame

    def resend(self, kind: str, frame: bytes) -> None:
        self.client.publish(topic_for(self.site, self.counter, kind), frame, qos=1).wait_for_publish(10)

    def wait_receipt(self, predicate: Any, timeout: float = 15.0) -> Receipt | None:
        """The first verified receipt that satisfies ``predicate`` within ``timeout``."""
        found: list[Receipt] = []

        def check() -> bool:
            while not self.receipts.empty():
                receipt = parse_receipt(self.receipts.get(), [RECEIPT_KEY.public_key()])
                if predicate(receipt):
                    found.append(receipt)
            return bool(found)

        wait_for(check, timeout)
        return found[0] if found else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


CASES = {"mqtt5-shared": ("5", True), "mqtt5-plain": ("5", False), "mqtt311": ("3.1.1", False)}


@pytest.fixture(params=sorted(CASES))
def transport(request: pytest.FixtureRequest) -> tuple[str, bool]:
    return CASES[request.param]


def test_committed_events_are_receipted_to_their_box(mosquitto, registry, central_key, enrol, tmp_path, transport):  # noqa: PLR0917
    protocol, shared = transport
    device = enrol()
    options = {"protocol": protocol, "shared": shared, "receipt_signer": Signer(RECEIPT_KEY)}
    with Collector(mosquitto.url, registry, central_key.path, tmp_path / "state.sqlite", **options) as central:
        box = Box(mosquitto.url, device, central_key.public, mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        try:
            for _ in range(5):
                box.send()
            box.send("read_failed")
            receipt = box.wait_receipt(lambda r: r.upto == 6)
        finally:
            box.close()
        assert receipt is not None, "no receipt covering seq 1..6"
        assert (receipt.device_id, receipt.key_id) == ("box-1", device.record.key_id)
        assert central.reasons() == []  # the centre's own receipts are not rejected events


def test_a_duplicate_is_receipted_again(mosquitto, registry, central_key, enrol, tmp_path) -> None:
    device = enrol()
    state = tmp_path / "state.sqlite"
    with Collector(mosquitto.url, registry, central_key.path, state, receipt_signer=Signer(RECEIPT_KEY)) as central:
        box = Box(mosquitto.url, device, central_key.public, mqtt.MQTTv5)
        try:
            frame = box.send()
            assert box.wait_receipt(lambda r: r.covers(1)) is not None
            box.resend("identity", frame)  # as a box does when no receipt reached it
            again = box.wait_receipt(lambda r: r.covers(1))
        finally:
            box.close()
        assert again is not None, "the duplicate was not receipted again"
        assert central.reasons() == ["duplicate"]


def test_the_latest_receipt_is_retained_for_a_box_that_reconnects(mosquitto, registry, central_key, enrol, tmp_path):
    device = enrol()
    with Collector(
        mosquitto.url, registry, central_key.path, tmp_path / "s.sqlite", receipt_signer=Signer(RECEIPT_KEY)
    ):
        box = Box(mosquitto.url, device, central_key.public, mqtt.MQTTv5)
        try:
            for _ in range(3):
                box.send()
            assert box.wait_receipt(lambda r: r.upto == 3) is not None
        finally:
            box.close()
    later = Box(mosquitto.url, device, central_key.public, mqtt.MQTTv311)  # the centre is gone now
    try:
        assert later.wait_receipt(lambda r: r.upto == 3) is not None
    finally:
        later.close()


def test_a_gap_is_receipted_as_the_numbers_held_above_it(mosquitto, registry, central_key, enrol, tmp_path) -> None:
    device = enrol()
    with Collector(
        mosquitto.url, registry, central_key.path, tmp_path / "s.sqlite", receipt_signer=Signer(RECEIPT_KEY)
    ):
        box = Box(mosquitto.url, device, central_key.public, mqtt.MQTTv5)
        try:
            box.send()
            box.seq += 2  # seq 2 and 3 are still on their way (backlog lane)
            box.send()
            receipt = box.wait_receipt(lambda r: 4 in r.above)
        finally:
            box.close()
    assert receipt is not None
    assert [s for s in range(1, 6) if receipt.covers(s)] == [1, 4]
