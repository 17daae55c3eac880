"""Receipt benchmarks for bench/transport.py (issue 12), on one local mosquitto.

1. receipt lag: from the centre's commit of an event (its ``on_event``, which runs after the
   commit, the broker's acknowledgement and the receipt note) to a real box (:class:`Publisher`
   with the receipt key) deleting the row, p50/p95 at 1 and at 100 events/s from one box
   (goal: p95 < 1 s on loopback);
2. the centre's throughput with receipts on vs off in the same run: N events from M boxes are
   queued at the broker for the listener's persistent session, then the listener drains them;
   runs alternate off/on so machine noise hits both (goal: receipts cost at most 10%).
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.listener import CentralListener
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for

PRIVATE = {"source": "chip", "citizen": {"id_number": "000000000000", "full_name": "Bench"}, "verification": {}}


class _World:
    def __init__(self, root: Path, boxes: int) -> None:
        self.root = root
        self.central = X25519PrivateKey.generate()
        self.receipt_key = Ed25519PrivateKey.generate()
        self.registry = Registry(root / "registry", create=True)
        self.builders = []
        for n in range(boxes):
            key = Ed25519PrivateKey.generate()
            self.registry.add_device(f"bench-{n}", "bench", f"c{n:03d}", key.public_key())
            self.builders.append(
                EventBuilder(f"bench-{n}", "bench", f"c{n:03d}", Signer(key), self.central.public_key())
            )
        self.runs = 0

    def listener(self, url: str, on_event: Any, *, receipts: bool, client_id: str) -> CentralListener:
        self.runs += 1
        return CentralListener(
            url,
            self.registry,
            self.central,
            on_event=on_event,
            state_path=self.root / f"central-{client_id}.sqlite",
            shared=False,
            client_id=client_id,
            receipt_signer=Signer(self.receipt_key) if receipts else None,
        )


def _client(port: int, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def receipt_lag(url: str, port: int, root: Path, rate: float, seconds: float) -> dict[str, Any]:
    """Commit-to-deletion lag: a real box (Publisher with the receipt key) sends ``rate`` events/s
    for ``seconds``; per event, from the centre's ``on_event`` (after its commit) to the moment the
    box applied a receipt covering it (its row deleted), both clocks of this process."""
    from idstation.mqtt.client import Publisher, PublisherConfig

    del port  # the box connects by URL
    world = _World(root / f"lag-{rate:g}", 0)
    key = Ed25519PrivateKey.generate()
    world.registry.add_device("lag-box", "lag", f"r{int(rate)}", key.public_key())
    committed: dict[int, float] = {}
    deleted: dict[int, float] = {}

    def on_event(event: Any) -> None:
        if event.kind == "identity":
            committed[int(event.header["seq"])] = time.monotonic()

    listener = world.listener(url, on_event, receipts=True, client_id=f"bench-lag-{rate:g}")
    listener.start()
    listener.wait_ready(15)
    config = PublisherConfig(
        broker_url=url, device_id="lag-box", site="lag", counter=f"r{int(rate)}", signing_key=key,
        central_public_key=world.central.public_key(), outbox_path=root / f"lag-{rate:g}.sqlite",
        receipt_keys=[world.receipt_key.public_key()], reconnect_min_s=0.1,
    )  # fmt: skip
    box = Publisher(config)
    box.start()
    box.wait_connected(10)
    stop = threading.Event()

    def watch() -> None:  # the box's receipt counters, polled: when did the deletion cover seq?
        while not stop.is_set():
            upto = box.receipts.counters.last_upto or 0
            now = time.monotonic()
            for seq in range(len(deleted) + 1, upto + 1):
                deleted.setdefault(seq, now)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    total = max(1, int(rate * seconds))
    start = time.monotonic()
    for n in range(1, total + 1):
        box.submit_identity(PRIVATE)
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
    box.drain(30)
    time.sleep(0.05)  # the watcher's last look
    stop.set()
    watcher.join(5)
    box.stop()
    listener.stop()
    lags = sorted(deleted[s] - committed[s] for s in deleted if s in committed)
    return {
        "events": total,
        "receipted": len(lags),
        "receipts_sent": listener.receipts.sent if listener.receipts else 0,
        "lag_p50_ms": round(1000 * statistics.median(lags), 1) if lags else None,
        "lag_p95_ms": round(1000 * lags[int(0.95 * (len(lags) - 1))], 1) if lags else None,
    }


def _drain_rate(
    url: str, port: int, world: _World, frames: list[tuple[str, bytes]], *, receipts: bool
) -> tuple[float, float, float]:
    """Events/s the listener takes from its queued persistent session: per wall-clock second and
    per CPU second of this process (the listener's threads: steadier on a shared machine)."""
    client_id = f"bench-drain-{world.runs}"
    count = 0
    done = threading.Event()

    def on_event(_event: Any) -> None:
        nonlocal count
        count += 1
        if count >= len(frames):
            done.set()

    first = world.listener(url, lambda _e: None, receipts=receipts, client_id=client_id)
    first.start()
    first.wait_ready(15)
    first.stop()  # the session stays at the broker and queues what follows
    sender = _client(port, f"{client_id}-sender")
    infos = [sender.publish(topic, frame, qos=1) for topic, frame in frames]
    for info in infos:
        info.wait_for_publish(60)
    sender.loop_stop()
    sender.disconnect()
    listener = world.listener(url, on_event, receipts=receipts, client_id=client_id)
    start, cpu = time.perf_counter(), time.process_time()
    listener.start()
    done.wait(600)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    listener.stop()
    per_event = listener.receipts.sent / count if listener.receipts else 0.0
    return count / elapsed, count / cpu, per_event


def throughput_on_off(url: str, port: int, root: Path, events: int, *, boxes: int, rounds: int = 3) -> dict[str, Any]:
    """The centre's events/s with receipts off and on, alternating, ``rounds`` of each."""
    world = _World(root / "throughput", boxes)
    rates: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
    for _ in range(rounds):
        for mode in ("off", "on"):
            frames = []
            for i in range(events):
                builder = world.builders[i % boxes]
                seq = i // boxes + 1  # each run has a fresh centre state
                kind = "identity" if i % 2 else "read_failed"
                extra: dict[str, Any] = (
                    {"private": PRIVATE} if kind == "identity" else {"reason": "bench", "detail": ""}
                )
                topic = topic_for("bench", builder.counter_id, kind)
                frames.append((topic, builder.build(kind, seq, **extra).frame))
            rates[mode].append(_drain_rate(url, port, world, frames, receipts=mode == "on"))
    off = statistics.median(cpu for _, cpu, _ in rates["off"])
    on = statistics.median(cpu for _, cpu, _ in rates["on"])
    return {
        "events": events,
        "boxes": boxes,
        "events_s_receipts_off": [round(wall) for wall, _, _ in rates["off"]],
        "events_s_receipts_on": [round(wall) for wall, _, _ in rates["on"]],
        "events_per_cpu_s_receipts_off": [round(cpu) for _, cpu, _ in rates["off"]],
        "events_per_cpu_s_receipts_on": [round(cpu) for _, cpu, _ in rates["on"]],
        "receipts_per_event": round(statistics.median(r for _, _, r in rates["on"]), 3),
        "receipt_cost_pct_cpu": round(100 * (off - on) / off, 1),
    }


def costs_us(root: Path, count: int = 1000) -> dict[str, float]:
    """CPU microseconds the centre spends per identity event (verify, open, record: a batch of one)
    and per receipt (read the stream state, build, sign), measured in the same process and run."""
    from idstation.mqtt.central.receipts import ReceiptBatcher

    world = _World(root / "cost", 1)
    listener = world.listener("mqtt://127.0.0.1:1", lambda _e: None, receipts=True, client_id="bench-cost")
    topic = topic_for("bench", "c000", "identity")
    frames = [world.builders[0].build("identity", seq, private=PRIVATE).frame for seq in range(1, count + 1)]
    start = time.process_time()
    for frame in frames:
        listener.processor.process(topic, frame)
    event_us = 1e6 * (time.process_time() - start) / count
    clock = [0.0]
    batcher = ReceiptBatcher(Signer(world.receipt_key), listener.receipts.state, interval=0.0, clock=lambda: clock[0])
    start = time.process_time()
    for _ in range(count):
        batcher.note("bench", "c000", "bench-0", world.builders[0].signer.key_id)
        batcher.publish_due(lambda _t, _p: True)
    receipt_us = 1e6 * (time.process_time() - start) / count
    listener.stop()
    return {"event_us": round(event_us, 1), "receipt_us": round(receipt_us, 1)}
