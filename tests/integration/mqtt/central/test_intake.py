"""The intake over a real store. On PostgreSQL: a signed event with a NUL character in its header (which
PostgreSQL's text and jsonb cannot hold) is stored all the same — its frame byte for byte — and
its batch is recorded, acknowledged and delivered."""

from __future__ import annotations

import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.intake import Intake
from idstation.mqtt.central.listener import CentralProcessor
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import open_store
from idstation.mqtt.central.transport import Delivery
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for

from ..helpers import wait_for


class QueueTransport:
    """A transport port simulated in memory: deliveries handed in by the test, acks recorded."""

    def __init__(self) -> None:
        self.acked: list[Delivery] = []
        self.lock = threading.Lock()
        self.connected = True

    def ack(self, deliveries) -> None:
        with self.lock:
            self.acked.extend(deliveries)

    def pause(self) -> None: ...
    def resume(self) -> None: ...


def test_a_header_postgresql_cannot_hold_as_text_still_stores_its_event_and_batch(tmp_path, postgres_url) -> None:
    central = X25519PrivateKey.generate()
    registry = Registry(tmp_path / "registry", create=True)
    key = Ed25519PrivateKey.generate()
    registry.add_device("box-1", "hn-01", "c01", key.public_key())
    box = EventBuilder("box-1", "hn-01", "c01", Signer(key), central.public_key(), boot_id="b")
    good = [box.build("read_failed", seq, reason="timeout", detail="a\u0000b") for seq in (1, 2)]
    odd = box.build("heartbeat", 0, info={"note": "a\u0000b"})  # signed, valid JSON; jsonb has no NUL
    store = open_store(postgres_url, migrate=True)
    transport = QueueTransport()
    accepted, rejected = [], []
    processor = CentralProcessor(registry, central, store)
    intake = Intake(
        processor,
        transport,
        max_wait=0.5,  # the three land in one batch
        on_event=lambda e: accepted.append(e.event_id),
        on_reject=lambda _t, exc: rejected.append(exc.reason),
    )
    intake.start()
    try:
        for event in (good[0], odd, good[1]):
            kind = "heartbeat" if event is odd else "read_failed"
            intake.on_message(Delivery(topic_for("hn-01", "c01", kind), event.frame, time.time()))
        assert wait_for(lambda: len(transport.acked) == 3, 30)
    finally:
        intake.stop()
    stored = {e.event_id: e for e in store.events_after(0)}
    store.close()
    everything = [good[0], odd, good[1]]
    assert sorted(accepted) == sorted(e.event_id for e in everything) and rejected == []
    assert [stored[e.event_id].frame for e in everything] == [e.frame for e in everything]
    assert stored[odd.event_id].header["info"]["note"] == "a\ufffdb"  # the copy; the frame keeps the original


def test_receipts_say_the_committed_state_without_a_store_of_their_own(tmp_path, store_url) -> None:
    from idstation.mqtt.central.receipts import ReceiptBatcher
    from idstation.mqtt.receipt import parse_receipt

    central, key, signer_key = X25519PrivateKey.generate(), Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    registry = Registry(tmp_path / "registry", create=True)
    registry.add_device("box-1", "hn-01", "c01", key.public_key())
    box = EventBuilder("box-1", "hn-01", "c01", Signer(key), central.public_key(), boot_id="b")
    events = [box.build("read_failed", seq, reason="timeout") for seq in (1, 2, 5)]  # a gap: 3-4
    store = open_store(store_url, migrate=True)
    transport = QueueTransport()
    receipts = ReceiptBatcher(Signer(signer_key), None, interval=0.0)  # no store: only what record() returned
    intake = Intake(CentralProcessor(registry, central, store), transport, receipts=receipts, on_event=lambda e: None)
    intake.start()
    try:
        for event in [*events, events[1]]:  # and a duplicate
            intake.on_message(Delivery(topic_for("hn-01", "c01", "read_failed"), event.frame, time.time()))
        assert wait_for(lambda: len(transport.acked) == 4, 30)
    finally:
        intake.stop()
    sent: list[bytes] = []

    def publish(_topic: str, payload: bytes) -> bool:
        sent.append(payload)
        return True

    receipts.publish_due(publish)
    receipt = parse_receipt(sent[-1], [signer_key.public_key()])
    assert (receipt.upto, list(receipt.above)) == (2, [5]) == store.receipt_state("box-1", Signer(key).key_id)
    store.close()


def _box_events(tmp_path, count: int) -> tuple[X25519PrivateKey, Registry, list[Delivery]]:
    """The centre's key, a registry with box-1, and box-1's read_failed events 1..count as deliveries."""
    central, key = X25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    registry = Registry(tmp_path / "registry", create=True)
    registry.add_device("box-1", "hn-01", "c01", key.public_key())
    box = EventBuilder("box-1", "hn-01", "c01", Signer(key), central.public_key(), boot_id="b")
    topic = topic_for("hn-01", "c01", "read_failed")
    frames = [box.build("read_failed", seq, reason="timeout").frame for seq in range(1, count + 1)]
    return central, registry, [Delivery(topic, frame, time.time()) for frame in frames]


def test_a_read_burst_larger_than_a_batch_is_recorded_in_batches_whole_and_in_order(tmp_path, store_url) -> None:
    """The transport hands over read bursts (on_messages); a burst over max_batch is split, none
    of it lost, every event acknowledged once, in delivery order."""
    central, registry, deliveries = _box_events(tmp_path, 25)
    store = open_store(store_url, migrate=True)
    transport = QueueTransport()
    accepted, sizes = [], []
    intake = Intake(
        CentralProcessor(registry, central, store),
        transport,
        max_batch=4,
        on_event=lambda e: accepted.append(e.header["seq"]),
        on_batch=lambda size, _s: sizes.append(size),
        on_delivered=lambda: accepted.append("flush"),  # the CLI flushes its lines here, once a batch
    )
    intake.start()
    try:
        intake.on_messages(deliveries[:11])  # one burst of 11: batches of at most 4
        intake.on_messages(deliveries[11:])
        assert wait_for(lambda: len(transport.acked) == 25, 30)
    finally:
        intake.stop()
    store.close()
    assert [d.payload for d in transport.acked] == [d.payload for d in deliveries]
    assert [seq for seq in accepted if seq != "flush"] == list(range(1, 26)) and max(sizes) <= 4
    assert accepted[-1] == "flush" and accepted.count("flush") == len(sizes)  # after each batch's events


class _SlowStore:
    """The real store, each transaction made to last ``delay`` seconds more (a loaded database)."""

    def __init__(self, store, delay: float) -> None:
        self._store, self.delay = store, delay

    def record(self, incoming):
        time.sleep(self.delay)
        return self._store.record(incoming)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_the_pipeline_says_whether_it_waits_for_the_broker_or_for_the_store(tmp_path, store_url) -> None:
    """``Intake.waited`` (idstation_pipeline_wait_seconds_total): with deliveries queued and a slow
    store the check thread waits for the commit thread; with nothing delivered it waits for
    deliveries; the commit thread waits for checked batches while the listener is idle."""
    central, registry, deliveries = _box_events(tmp_path, 12)
    store = open_store(store_url, migrate=True)
    transport = QueueTransport()
    intake = Intake(CentralProcessor(registry, central, _SlowStore(store, 0.25)), transport, max_batch=2, on_event=id)
    intake.start()
    try:
        time.sleep(0.5)  # idle: nothing delivered yet
        idle = dict(intake.waited)
        intake.on_messages(deliveries)  # 6 batches of 2 behind a store taking 0.25 s a transaction
        assert wait_for(lambda: len(transport.acked) == 12, 30)
    finally:
        intake.stop()
    store.close()
    assert idle["check", "deliveries"] >= 0.3 and idle["check", "commit"] == 0.0
    assert idle["commit", "check"] >= 0.3
    behind_store = intake.waited["check", "commit"]
    assert behind_store >= 0.5  # batches 3-6 each waited for a 0.25 s transaction to end
