"""Transport benchmark, all in one run against one local mosquitto.

1. raw paho QoS 1 publishes/s (same payload size, same in-flight window) vs durable, signed and
   HPKE-sealed events/s through the outbox (goal: >= half of raw, >= 2,000 events/s on one core),
   measured three ways: delivery (events already stored: outbox -> broker -> acknowledged ->
   deleted durably), end to end with one producer (build, one fsync each, publish, ack) and end to
   end with several producer threads; plus what each step costs per event, and the one-core
   ceiling that sealing + signing + one raw publish leave;
2. a backlog drained over a 256 kbit/s line (a userspace token-bucket proxy, both directions)
   while live taps go on: live tap-to-acknowledgement p50/p95 (goal: p95 < 1 s);
3. central verify + decrypt + dedupe events/s on one core (goal: >= 5,000);
4. receipts (bench/transport_receipts.py): commit-to-receipt lag p50/p95 at 1 and 100 events/s
   per box (goal: p95 < 1 s), the centre's events/s with receipts on vs off in the same run, with
   few boxes sending bursts and with many boxes sending one event each (goal: <= 10% cost), and
   what one receipt costs the centre.

usage: python bench/transport.py [--events 5000] [--backlog 10000] [--taps 30] [--producers 4]
                                 [--skip-slow-line] [--skip-receipts | --receipts-only] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.agent.sim.broker import LocalBroker, free_port
from idstation.mqtt.central.listener import CentralProcessor
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import open_store
from idstation.mqtt.client import Publisher, PublisherConfig
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for

PRIVATE = {
    "source": "chip",
    "citizen": {"id_number": "000000000000", "full_name": "Bench Citizen", "date_of_birth": "01/01/1990"},
    "verification": {"passive_auth": "valid", "chip_auth": "valid"},
}


def raw_paho(port: int, payload: bytes, count: int, window: int) -> float:
    import paho.mqtt.client as mqtt

    done = threading.Event()
    acked = 0

    def on_publish(*_a: Any) -> None:
        nonlocal acked
        acked += 1
        if acked >= count:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    for _ in range(count):
        client.publish("bench/raw", payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def _publisher(
    url: str, key: Ed25519PrivateKey, central: X25519PrivateKey, outbox: Path, on_ack: Any = None, **kw: Any
) -> Publisher:
    config = PublisherConfig(
        broker_url=url,
        device_id="bench-1",
        site="bench",
        counter="c01",
        signing_key=key,
        central_public_key=central.public_key(),
        outbox_path=outbox,
        reconnect_min_s=0.1,
        reconnect_max_s=1.0,
        **kw,
    )
    return Publisher(config, on_ack=on_ack)


def durable(url: str, workdir: Path, count: int, producers: int = 1) -> tuple[float, float, int]:
    """Events/s submitted durably, events/s end to end (acknowledged), frame size.

    ``producers`` threads submit at once (each event is still its own transaction and fsync).
    """
    key, central = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    pub = _publisher(url, key, central, workdir / f"durable-{producers}.sqlite")
    pub.start()
    pub.wait_connected(10)
    pub.drain(10)

    def produce(n: int) -> None:
        for _ in range(n):
            pub.submit_identity(PRIVATE)

    threads = [threading.Thread(target=produce, args=(count // producers,)) for _ in range(producers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    submitted = time.perf_counter() - start
    pub.drain(300)
    acked = time.perf_counter() - start
    total = count // producers * producers
    size = len(pub.builder.build("identity", 1, private=PRIVATE).frame)
    pub.stop()
    return total / submitted, total / acked, size


def delivery(url: str, workdir: Path, count: int, window: int) -> float:
    """Events/s from a full outbox to the broker: stored signed+sealed events, acknowledged, deleted.

    The events are made offline first; the timer runs from ``start()`` (connect included) until
    the outbox is empty, with the same in-flight window as the raw run and no backlog rate limit.
    """
    key, central = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    outbox = workdir / "delivery.sqlite"
    offline = _publisher("mqtt://127.0.0.1:1", key, central, outbox)
    for _ in range(count):
        offline.submit_identity(PRIVATE)
    offline.stop(0.1)
    pub = _publisher(url, key, central, outbox, inflight=window, backlog_inflight=window, backlog_rate_bytes=None)
    start = time.perf_counter()
    pub.start()
    pub.drain(300)
    elapsed = time.perf_counter() - start
    left = pub.stats()["outbox"]["total"]
    pub.stop()
    if left:
        raise RuntimeError(f"delivery run left {left} events in the outbox")
    return count / elapsed


def per_event_costs(workdir: Path, count: int) -> dict[str, float]:
    """Microseconds per event of each step, one core: seal (HPKE), sign, the whole build, a durable insert."""
    from idstation.mqtt.events import BuiltEvent
    from idstation.mqtt.outbox import Outbox
    from idstation.mqtt.seal import seal_private

    key, central = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    builder = EventBuilder("bench-1", "bench", "c01", Signer(key), central.public_key())
    recipient = central.public_key()

    def per_call(fn: Any) -> float:
        start = time.perf_counter()
        for _ in range(count):
            fn()
        return (time.perf_counter() - start) / count * 1e6

    frame = builder.build("identity", 1, private=PRIVATE).frame
    box = Outbox(workdir / "costs.sqlite")
    topic = topic_for("bench", "c01", "identity")
    ids = iter(range(10**9))
    return {
        "seal_us": per_call(lambda: seal_private(PRIVATE, recipient, "bench-1", "0190-bench")),
        "sign_us": per_call(lambda: key.sign(frame)),
        "build_us": per_call(lambda: builder.build("identity", 1, private=PRIVATE)),
        "durable_insert_us": per_call(
            lambda: box.append("identity", topic, lambda seq: BuiltEvent(f"e{next(ids)}", "identity", seq, frame))
        ),
    }


class Throttle:
    """A TCP proxy that carries at most ``rate`` bytes/s in each direction (a slow line)."""

    def __init__(self, target_port: int, rate_bytes: float) -> None:
        self.port, self.target, self.rate = free_port(), target_port, rate_bytes
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def start(self) -> Throttle:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self._ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        budget, stamp = 0.0, time.monotonic()
        try:
            while True:
                data = await reader.read(256)
                if not data:
                    break
                now = time.monotonic()
                budget = min(self.rate * 0.05, budget + (now - stamp) * self.rate) - len(data)
                stamp = now
                if budget < 0:
                    await asyncio.sleep(-budget / self.rate)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


def slow_line(port: int, workdir: Path, opts: Any) -> dict[str, Any]:
    backlog, taps, line_kbit = opts.backlog, opts.taps, opts.line_kbit
    rate = line_kbit * 1000 / 8
    key, central = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    outbox = workdir / "slow.sqlite"
    offline = _publisher("mqtt://127.0.0.1:1", key, central, outbox, live_window_s=2.0)
    for _ in range(backlog):
        offline.submit_identity(PRIVATE)
    offline.stop(0.1)
    time.sleep(2.1)  # the queued events are now backlog
    throttle = Throttle(port, rate).start()
    acked: dict[str, float] = {}
    pub = _publisher(
        f"mqtt://127.0.0.1:{throttle.port}",
        key,
        central,
        outbox,
        live_window_s=2.0,
        backlog_rate_bytes=rate * opts.backlog_share,
        on_ack=lambda event_id, _kind: acked.__setitem__(event_id, time.perf_counter()),
    )
    start = time.perf_counter()
    pub.start()
    pub.wait_connected(30)
    latencies: list[float] = []
    limit = time.perf_counter() + 900
    n = 0
    while n < taps or (opts.full_drain and pub.stats()["outbox"]["total"] > 0 and time.perf_counter() < limit):
        n += 1
        t0 = time.perf_counter()
        event_id = pub.submit_identity(PRIVATE)
        deadline = t0 + 10
        while event_id not in acked and time.perf_counter() < deadline:
            time.sleep(0.005)
        latencies.append(acked.get(event_id, deadline) - t0)
        time.sleep(max(0.0, opts.tap_interval - (time.perf_counter() - t0)))
    depth_after_taps = pub.stats()["outbox"]["total"]
    drained_backlog = backlog + taps - depth_after_taps
    elapsed = time.perf_counter() - start
    pub.stop(1)
    throttle.stop()
    latencies.sort()
    return {
        "line_kbit_s": line_kbit,
        "backlog_events": backlog,
        "live_taps": n,
        "backlog_share_of_line": opts.backlog_share,
        "elapsed_s": round(elapsed, 1),
        "live_p50_s": round(statistics.median(latencies), 3),
        "live_p95_s": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 3),
        "live_max_s": round(latencies[-1], 3),
        "backlog_drained_during_taps": drained_backlog,
        "backlog_drain_events_s": round(drained_backlog / elapsed, 1),
        "backlog_drain_eta_s": round(backlog / max(drained_backlog / elapsed, 1e-9)),
    }


def central_rate(workdir: Path, count: int) -> float:
    """Central verify + decrypt + record (batches of 200, the listener's default) events/s, one core."""
    key, central = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    registry = Registry(workdir / "registry", create=True)
    registry.add_device("bench-1", "bench", "c01", key.public_key())
    builder = EventBuilder("bench-1", "bench", "c01", Signer(key), central.public_key())
    frames = [builder.build("identity", seq, private=PRIVATE).frame for seq in range(1, count + 1)]
    store = open_store(f"sqlite:///{workdir / 'central.sqlite'}")
    store.migrate()
    processor = CentralProcessor(registry, central, store)
    topic = topic_for("bench", "c01", "identity")
    start = time.process_time()
    for first in range(0, count, 200):  # as the listener does: check each, record a batch in one transaction
        checked = [processor.check(topic, frame) for frame in frames[first : first + 200]]
        for item, outcome in zip(checked, store.record([c.incoming for c in checked]), strict=True):
            processor.accept(item, outcome)
    rate = count / (time.process_time() - start)
    store.close()
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--backlog", type=int, default=10000)
    parser.add_argument("--taps", type=int, default=30)
    parser.add_argument("--line-kbit", type=float, default=256.0)
    parser.add_argument("--backlog-share", type=float, default=0.6, help="backlog rate as a share of the line")
    parser.add_argument("--tap-interval", type=float, default=1.0, help="seconds between live taps")
    parser.add_argument("--full-drain", action="store_true", help="keep tapping until the whole backlog is drained")
    parser.add_argument("--window", type=int, default=20, help="in-flight window, raw and delivery runs")
    parser.add_argument("--producers", type=int, default=4, help="threads submitting at once")
    parser.add_argument("--skip-slow-line", action="store_true", help="skip the 256 kbit/s run (about 5 minutes)")
    parser.add_argument("--skip-receipts", action="store_true", help="skip the receipt runs")
    parser.add_argument("--receipts-only", action="store_true", help="only the receipt runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("IDSTATION_LOG_LEVEL", "warning")
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    if args.receipts_only:
        return _report(receipts(args), args.json)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with LocalBroker(work / "broker", persistence=False) as broker:
            submit_rate, durable_rate, size = durable(broker.url, work, args.events)
            raw_rate = raw_paho(broker.port, os.urandom(size), args.events, args.window)
            submit_n, durable_n, _ = durable(broker.url, work, args.events, args.producers)
            deliver_rate = delivery(broker.url, work, args.events, args.window)
            slow = None if args.skip_slow_line else slow_line(broker.port, work, args)
        costs = per_event_costs(work, min(args.events, 2000))
        central = central_rate(work, args.events)
    publish_us = 1e6 / raw_rate  # what one raw QoS 1 publish costs this process, all in
    ceiling = 1e6 / (costs["build_us"] + publish_us)  # one core: build then publish, nothing else
    result = {
        "frame_bytes": size,
        "raw_paho_qos1_msgs_s": round(raw_rate),
        "durable_delivery_events_s": round(deliver_rate),
        "durable_delivery_vs_raw": round(deliver_rate / raw_rate, 2),
        "durable_submit_events_s": round(submit_rate),
        "durable_acked_events_s": round(durable_rate),
        "durable_vs_raw": round(durable_rate / raw_rate, 2),
        f"durable_acked_events_s_{args.producers}_producers": round(durable_n),
        f"durable_vs_raw_{args.producers}_producers": round(durable_n / raw_rate, 2),
        f"durable_submit_events_s_{args.producers}_producers": round(submit_n),
        "per_event_us": {k: round(v, 1) for k, v in costs.items()} | {"raw_publish_us": round(publish_us, 1)},
        "one_core_ceiling_build_plus_publish_events_s": round(ceiling),
        "one_core_ceiling_vs_raw": round(ceiling / raw_rate, 2),
        "slow_line": slow,
        "central_verify_decrypt_dedupe_events_s_per_core": round(central),
    }
    if not args.skip_receipts:
        result |= receipts(args)
    return _report(result, args.json)


def receipts(args: argparse.Namespace) -> dict[str, Any]:
    """The receipt runs, each against its own local mosquitto."""
    import transport_receipts as tr

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with LocalBroker(work / "broker", persistence=False) as broker:
            out = {
                "receipt_lag_1_per_s": tr.receipt_lag(broker.url, broker.port, work, 1.0, 30.0),
                "receipt_lag_100_per_s": tr.receipt_lag(broker.url, broker.port, work, 100.0, 10.0),
                "receipts_on_off_10_boxes": tr.throughput_on_off(broker.url, broker.port, work, args.events, boxes=10),
                "receipts_on_off_1_event_per_box": tr.throughput_on_off(
                    broker.url, broker.port, work, min(args.events, 2000), boxes=min(args.events, 2000)
                ),
            }
        costs = tr.costs_us(work)
    out["centre_cpu_us"] = costs
    for name in ("receipts_on_off_10_boxes", "receipts_on_off_1_event_per_box"):
        run = out[name]
        receipt_us = run["receipts_per_event"] * costs["receipt_us"]  # per event, CPU
        event_us = 1e6 / statistics.median(run["events_per_cpu_s_receipts_off"])  # batched listener, CPU
        run["receipt_cost_pct_estimated"] = round(100 * receipt_us / event_us, 1)
    return out


def _report(result: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>50}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
