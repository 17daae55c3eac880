"""The centre's transports alone: deliveries/s and CPU per delivery of the listener's broker paths.

What one listener process spends to take a message from the broker and acknowledge it, with
the rest of the pipeline (verify, decrypt, store, receipts) out of the way, against a bare
client of the same library on the same broker in the same run (the ratio is what to compare
across runs: the machine is shared).

- **RabbitMQ** (the 3-node test cluster, tests/fixtures/rabbitmq.py, the quorum queue of
  mqtt/central/amqp.py): ``raw`` is a bare pika consumer (basic_consume, same prefetch, one ack
  per message; ``raw_batch_200``: one ``multiple`` ack per 200, the listener's way);
  ``transport`` is :class:`AmqpTransport` feeding a sink that acknowledges in batches from
  another thread (as the listener's commit thread does); ``intake`` is the same transport
  feeding the listener's real :class:`Intake` with a no-op processor and store; ``paced``: the
  sink spends ``--work-us`` per delivery (a listener busy verifying); ``intake_commit``: the
  no-op store waits ``--commit-ms`` per batch (a database commit). The cluster runs twice:
  Erlang's default scheduler busy-wait, then ``+sbwt none +sbwtdcpu none +sbwtdio none`` (the
  fixture's and the shipped recipe's), with the 3 nodes' CPU when idle and at steady rates
  (``--trickle``: published at that rate while a transport consumes). ``*_pika`` rows: the same
  transport with ``fast=False`` (pika decodes every delivery; mqtt/central/amqp_fast.py off);
  ``--ab N``: N alternating drains of ``transport`` and ``transport_pika`` in the same run, their
  CPU us per delivery (median) and the ratio (fast / pika). ``--rows`` picks rows, ``--nodes 1``
  a 1-node broker, ``--mqtt-headers`` fills with the headers RabbitMQ's MQTT plugin adds.
- **mosquitto** (bench/transport_central_mqtt.py): a persistent session filled while offline,
  then drained by a bare paho consumer, by :class:`MqttTransport` + sink and + intake, for
  the broker's in-flight window and the listener's Receive Maximum; memory per queued message.

Figures: deliveries/s (first delivery to last acknowledgement), this process's CPU us per
delivery, the broker's CPU us per delivery.

usage: python bench/transport_central.py [--broker rabbitmq|mosquitto|both] [--messages 20000]
           [--prefetch 500] [--work-us 150] [--commit-ms 5] [--trickle 500 2000] [--idle 10]
           [--no-busy-wait-baseline] [--rows transport,transport_pika] [--ab 3] [--nodes 3]
           [--mqtt-headers] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pika
from idstation.mqtt.central.amqp import EVENT_QUEUE, AmqpTransport, declare_topology
from idstation.mqtt.central.intake import Intake

from tests.fixtures.rabbitmq import RabbitCluster

_TICK = os.sysconf("SC_CLK_TCK")
PAYLOAD_SIZE = 700  # an identity frame is 667-720 bytes


def pid_cpu_s(pid: int | None) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def routing_keys(count: int) -> list[str]:
    return [f"idstation.v1.s{i % 40:02d}.c{i % 5}.identity" for i in range(count)]


# --- the consumers under test ---------------------------------------------------------------------


class Sink:
    """Stands in for the listener's pipeline: takes deliveries, acknowledges them in batches of at
    most ``batch`` from its own thread (the commit thread's role), counts what was acknowledged."""

    def __init__(self, batch: int = 200, work_us: float = 0) -> None:
        self.batch, self.work_s = batch, work_us / 1e6
        self.items: collections.deque[Any] = collections.deque()
        self.acked = 0
        self.first: float | None = None
        self.done = threading.Event()
        self._stop = threading.Event()

    def on_message(self, delivery: Any) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.items.append(delivery)

    def on_messages(self, deliveries: list[Any]) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.items.extend(deliveries)

    def run(self, transport: Any, want: int, deadline: float) -> None:
        while self.acked < want and time.monotonic() < deadline and not self._stop.is_set():
            taken = [self.items.popleft() for _ in range(min(self.batch, len(self.items)))]
            if not taken:
                time.sleep(0.002)
                continue
            if self.work_s:
                spin_until = time.perf_counter() + self.work_s * len(taken)
                while time.perf_counter() < spin_until:
                    pass
            transport.ack(taken)
            self.acked += len(taken)
        self.done.set()


class NullPipeline:
    """A processor + store that accept everything at no cost, so :class:`Intake` (queue, batches,
    the check and commit threads, acknowledgement) runs as in a listener."""

    def __init__(self, commit_ms: float = 0) -> None:
        self.store, self.commit_s = self, commit_ms / 1000
        self.checked = SimpleNamespace(incoming=None, header=None)
        self.outcome = SimpleNamespace(redeliver=False)
        self.result = SimpleNamespace(cursor=None)
        self.count = 0
        self.first: float | None = None

    def check(self, _topic: str, _payload: bytes, _received_at: float) -> Any:
        if self.first is None:
            self.first = time.perf_counter()
        return self.checked

    def record(self, incoming: Sequence[Any]) -> list[Any]:
        if self.commit_s:
            time.sleep(self.commit_s)  # a database commit's wait (the GIL is free meanwhile)
        return [self.outcome] * len(incoming)

    def accept(self, _checked: Any, _outcome: Any) -> Any:
        self.count += 1
        return self.result

    def mark_delivered(self, _cursors: Sequence[int]) -> None:
        return None

    def ping(self) -> None:
        return None


def measure(run: Callable[[], tuple[int, float | None]], broker_cpu: Callable[[], float]) -> dict[str, float]:
    """``run()`` consumes and returns (deliveries, perf_counter of the first); figures per delivery."""
    cpu0, broker0 = time.process_time(), broker_cpu()
    got, first = run()
    end = time.perf_counter()
    cpu, broker = time.process_time() - cpu0, broker_cpu() - broker0
    if not got or first is None:
        return {"deliveries": 0}
    return {
        "deliveries": got,
        "per_s": round(got / (end - first)),
        "cpu_us": round(cpu / got * 1e6, 1),
        "broker_cpu_us": round(broker / got * 1e6, 1),
    }


def drive_transport(
    transport: Any,
    want: int,
    *,
    intake: bool,
    work_us: float = 0,
    commit_ms: float = 0,
    bursts: bool = False,
    timeout: float = 300,
) -> tuple[int, float | None]:
    """Start ``transport`` into a sink (or a real Intake with a no-op pipeline); until ``want`` acked.
    ``work_us``: the sink spends that much CPU per delivery (a listener busy verifying), so the
    broker sees the gaps of a consumer slower than itself. ``commit_ms``: the no-op store waits
    that long per batch (a PostgreSQL commit), so the broker's in-flight window shows. ``bursts``:
    the transport hands over lists (``on_messages``; to the Intake only if it takes them)."""
    deadline = time.monotonic() + timeout
    if not intake:
        sink = Sink(work_us=work_us)
        pump = threading.Thread(target=sink.run, args=(transport, want, deadline), daemon=True)
        pump.start()
        transport.start(sink.on_message, sink.on_messages if bursts else None)
        sink.done.wait(timeout)
        transport.stop()
        return sink.acked, sink.first
    null = NullPipeline(commit_ms)
    pipeline = Intake(null, transport, on_event=lambda _e: None, capacity=getattr(transport, "prefetch", None))
    pipeline.start()
    transport.start(pipeline.on_message, getattr(pipeline, "on_messages", None) if bursts else None)
    while null.count < want and time.monotonic() < deadline:
        time.sleep(0.005)
    pipeline.stop()
    transport.stop()
    return null.count, null.first


# --- RabbitMQ -------------------------------------------------------------------------------------


# what RabbitMQ 3.10's MQTT plugin puts on a QoS 1 message from a box
MQTT_HEADERS = {"x-mqtt-dup": False, "x-mqtt-publish-qos": 1}


class Rabbit:
    def __init__(
        self, root: Path, *, busy_wait: bool, prefetch: int, nodes: int = 3, mqtt_headers: bool = False
    ) -> None:
        self.prefetch, self.headers = prefetch, MQTT_HEADERS if mqtt_headers else None
        self.cluster = RabbitCluster(root, size=nodes, busy_wait=busy_wait)
        self.cluster.start_all()
        self.url = self.cluster.amqp_urls[0]
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        declare_topology(conn.channel())
        conn.close()

    def cpu(self) -> float:
        return sum(pid_cpu_s(node.pid()) for node in self.cluster.nodes)

    def idle_cpu(self, seconds: float) -> float:
        """Percent of one core the 3 idle nodes take together."""
        before = self.cpu()
        time.sleep(seconds)
        return round((self.cpu() - before) / seconds * 100, 1)

    def fill(self, count: int) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = conn.channel()
        payload, props = os.urandom(PAYLOAD_SIZE), pika.BasicProperties(delivery_mode=2, headers=self.headers)
        for key in routing_keys(count):
            channel.basic_publish("amq.topic", key, payload, props)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if channel.queue_declare(EVENT_QUEUE, passive=True).method.message_count >= count:
                break
            time.sleep(0.2)
        conn.close()

    def raw(self, count: int, batch: int = 1) -> tuple[int, float | None]:
        """A bare pika consumer: basic_consume, the same prefetch, one ack per message (``batch``
        1) or one ``multiple`` ack per ``batch`` messages (and for the last ones)."""
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = conn.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        state: dict[str, Any] = {"got": 0, "first": None}

        def on_message(ch: Any, method: Any, _props: Any, _body: bytes) -> None:
            if state["first"] is None:
                state["first"] = time.perf_counter()
            state["got"] += 1
            if state["got"] % batch == 0 or state["got"] >= count:
                ch.basic_ack(method.delivery_tag, multiple=batch > 1)

        channel.basic_consume(EVENT_QUEUE, on_message)
        deadline = time.monotonic() + 300
        while state["got"] < count and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        conn.close()
        return state["got"], state["first"]

    def transport(self, count: int, *, intake: bool, fast: bool = True, **options: Any) -> tuple[int, float | None]:
        transport = AmqpTransport(self.url, prefetch=self.prefetch, fast=fast)
        return drive_transport(transport, count, intake=intake, **options)

    def trickle(self, rate: int, seconds: float) -> dict[str, float]:
        """Events published at ``rate``/s for ``seconds`` while a transport consumes them: the 3
        nodes' CPU (percent of a core, us per event) at a steady national rate, where the
        schedulers keep running out of work (and spin, when busy-wait is on)."""
        sink, deadline = Sink(), time.monotonic() + seconds + 30
        transport = AmqpTransport(self.url, prefetch=self.prefetch)
        pump = threading.Thread(target=sink.run, args=(transport, 1 << 62, deadline), daemon=True)
        pump.start()
        transport.start(sink.on_message)
        transport.wait_ready(10)
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        channel, payload = conn.channel(), os.urandom(PAYLOAD_SIZE)
        props, keys = pika.BasicProperties(delivery_mode=2), routing_keys(100)
        before, start, sent = self.cpu(), time.monotonic(), 0
        while (now := time.monotonic()) < start + seconds:
            due = int((now - start) * rate)
            for _ in range(due - sent):
                channel.basic_publish("amq.topic", keys[sent % 100], payload, props)
                sent += 1
            conn.sleep(0.01)
        used = self.cpu() - before
        conn.close()
        sink._stop.set()
        transport.stop()
        return {
            "rate": rate,
            "cpu_pct_3_nodes": round(used / seconds * 100, 1),
            "us_per_event": round(used / max(sent, 1) * 1e6, 1),
        }

    def stop(self) -> None:
        self.cluster.stop()


def run_rows(
    consumers: dict[str, Callable[[int], tuple[int, float | None]]],
    fill: Callable[[int], object],
    broker_cpu: Callable[[], float],
    count: int,
    tag: str,
) -> dict[str, Any]:
    """For each consumer: fill ``count`` messages, then measure its drain."""
    rows: dict[str, Any] = {}
    for label, consume in consumers.items():
        fill(count)
        rows[label] = measure(lambda c=consume: c(count), broker_cpu)  # type: ignore[misc]
        print(f"{tag} {label}: {rows[label]}", file=sys.stderr, flush=True)
    return rows


def rabbit_consumers(rabbit: Rabbit, args: argparse.Namespace) -> dict[str, Callable[[int], Any]]:
    consumers = {
        "raw": rabbit.raw,
        "raw_batch_200": partial(rabbit.raw, batch=200),
        "transport": partial(rabbit.transport, intake=False),
        "transport_pika": partial(rabbit.transport, intake=False, fast=False),
        "intake": partial(rabbit.transport, intake=True),
        "transport_bursts": partial(rabbit.transport, intake=False, bursts=True),
        "intake_bursts": partial(rabbit.transport, intake=True, bursts=True),
        "intake_bursts_pika": partial(rabbit.transport, intake=True, bursts=True, fast=False),
        f"intake_commit_{args.commit_ms}ms": partial(rabbit.transport, intake=True, commit_ms=args.commit_ms),
        f"paced_{args.work_us}us": partial(rabbit.transport, intake=False, work_us=args.work_us),
    }
    if args.rows:
        wanted = args.rows.split(",")
        consumers = {label: consumers[label] for label in wanted if label in consumers}
    return consumers


def ab_rounds(rabbit: Rabbit, args: argparse.Namespace) -> dict[str, Any]:
    """``transport`` (amqp_fast) against ``transport_pika`` (pika alone), alternating, same run."""
    pairs = {
        "transport": partial(rabbit.transport, intake=False),
        "transport_pika": partial(rabbit.transport, intake=False, fast=False),
    }
    cpu: dict[str, list[float]] = {label: [] for label in pairs}
    for round_no in range(args.ab):
        order = list(pairs) if round_no % 2 == 0 else list(reversed(pairs))
        rows = run_rows(
            {label: pairs[label] for label in order}, rabbit.fill, rabbit.cpu, args.messages, f"ab {round_no}"
        )
        for label, row in rows.items():
            if row.get("deliveries"):
                cpu[label].append(row["cpu_us"])
    medians = {label: round(statistics.median(values), 1) for label, values in cpu.items() if values}
    ratio = medians["transport"] / medians["transport_pika"] if len(medians) == 2 else None
    return {"cpu_us": cpu, "median_cpu_us": medians, "ratio_fast_to_pika": round(ratio, 3) if ratio else None}


def bench_rabbit(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    variants = ([("busy_wait", True)] if args.busy_wait_baseline else []) + [("sbwt_none", False)]
    for name, busy in variants:
        rabbit = Rabbit(
            root / name, busy_wait=busy, prefetch=args.prefetch, nodes=args.nodes, mqtt_headers=args.mqtt_headers
        )
        try:
            result: dict[str, Any] = {"idle_cpu_pct_3_nodes": rabbit.idle_cpu(args.idle)}
            consumers = rabbit_consumers(rabbit, args)
            result.update(run_rows(consumers, rabbit.fill, rabbit.cpu, args.messages, f"rabbitmq {name}"))
            if args.ab:
                result["ab"] = ab_rounds(rabbit, args)
                print(f"rabbitmq {name} ab: {result['ab']}", file=sys.stderr, flush=True)
            for rate in args.trickle:
                result[f"trickle_{rate}"] = rabbit.trickle(rate, args.idle)
                print(f"rabbitmq {name} trickle: {result[f'trickle_{rate}']}", file=sys.stderr, flush=True)
            result["idle_cpu_pct_3_nodes_after"] = rabbit.idle_cpu(args.idle)
            out[name] = result
        finally:
            rabbit.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("rabbitmq", "mosquitto", "both"), default="both")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--work-us", type=int, default=150, help="CPU per delivery of the paced row")
    parser.add_argument("--commit-ms", type=int, default=5, help="store wait per batch of the intake_commit rows")
    parser.add_argument("--trickle", type=int, nargs="*", default=[500, 2000], help="steady rates (events/s)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle-CPU measurement")
    parser.add_argument("--no-busy-wait-baseline", dest="busy_wait_baseline", action="store_false")
    parser.add_argument("--rows", default="", help="comma-separated row labels (default: all)")
    parser.add_argument("--ab", type=int, default=0, help="alternating transport / transport_pika drains")
    parser.add_argument("--nodes", type=int, default=3, help="RabbitMQ nodes")
    parser.add_argument("--mqtt-headers", action="store_true", help="fill with the MQTT plugin's headers")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="idstation-transport-", dir="/tmp"))
    os.chmod(root, 0o755)
    report: dict[str, Any] = {"load_before": os.getloadavg()[0], "messages": args.messages}
    try:
        if args.broker in ("mosquitto", "both"):
            from bench.transport_central_mqtt import bench_mosquitto

            report["mosquitto"] = bench_mosquitto(root, args)
        if args.broker in ("rabbitmq", "both"):
            report["rabbitmq"] = bench_rabbit(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report["load_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
