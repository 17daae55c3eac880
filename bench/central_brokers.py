"""The two brokers bench/central.py drives, behind one small interface.

- :class:`RabbitBench`: the 3-node RabbitMQ cluster (tests/fixtures/rabbitmq.py); boxes publish MQTT
  to the nodes, the listeners consume the shared quorum queue over AMQP (``--amqp``, ``--prefetch``);
  the raw baseline is a bare pika consumer with the same prefetch, acknowledging as a listener does
  (one ``multiple`` ack per 200: one Raft command in the quorum queue instead of 200), and beside it
  the same with one ack per message (``single_ack``).
- :class:`MosquittoBench`: a site or province mosquitto (the shipped queue and window settings of
  mqtt/central/broker_config.py, persistence as docs/mqtt.md's site broker, without TLS on
  loopback). The listeners connect once with persistent sessions (stable ``--client-id``;
  1 listener: a plain subscription, ``--no-shared``, as a site runs it; 2: the MQTT 5 shared
  subscription of ``--group``), go offline, the boxes fill their sessions' queues, then the
  listeners come back and drain them. The raw baseline is a bare paho consumer with a persistent
  session, the same subscriptions, the same Receive Maximum as the listener's transport,
  acknowledging each message as it arrives.

Each exposes ``fill(frames)`` (events/s into the broker), ``raw(frames)`` (the bare consumer's
events/s and the broker's and its own CPU per message; the messages filled by it),
``listener_args(run, i, n)``, ``prepare(run, n, start)`` (before the fill), ``forget(run, n)``
(after a drain), ``cpu()`` (the broker's CPU seconds) and ``stop()``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pika
from idstation.mqtt.central import broker_config, mqtt_transport
from idstation.mqtt.central.amqp import EVENT_QUEUE, declare_topology
from idstation.mqtt.topics import event_subscriptions
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.central_profile import pid_cpu_s, tree_cpu_s
from tests.fixtures.rabbitmq import RabbitCluster
from tests.integration.central.boxes import Frame, run_gateways

GATEWAYS = 8  # MQTT connections carrying the simulated boxes' streams
RAW_BATCH = 200  # the raw AMQP consumer acknowledges like a listener's batch: one ``multiple`` ack


def _measured(broker_cpu: Callable[[], float], count: int, consume: Callable[[], float]) -> dict[str, Any]:
    """events/s of ``consume()``, and the broker's and this process's CPU per message meanwhile."""
    broker0, client0 = broker_cpu(), time.process_time()
    rate = consume()
    broker, client = broker_cpu() - broker0, time.process_time() - client0
    return {
        "events_s": round(rate),
        "broker_cpu_us_per_event": round(broker * 1e6 / count),
        "client_cpu_us_per_event": round(client * 1e6 / count),
    }


def _publish(urls: Sequence[str], frames: Sequence[Frame]) -> float:
    """Every frame QoS 1 over ``GATEWAYS`` connections until the broker acknowledged it; events/s."""
    start = time.perf_counter()
    for gw in run_gateways(urls, frames, GATEWAYS):
        gw.join(900)
    return len(frames) / (time.perf_counter() - start)


class RabbitBench:
    name = "rabbitmq"

    def __init__(self, root: Path, prefetch: int) -> None:
        self.prefetch = prefetch
        self.cluster = RabbitCluster(root / "mq")
        self.cluster.start_all()
        conn = pika.BlockingConnection(pika.URLParameters(self.cluster.amqp_urls[0]))
        declare_topology(conn.channel())
        conn.close()

    def fill(self, frames: Sequence[Frame]) -> float:
        rate = _publish(self.cluster.mqtt_urls, frames)
        deadline = time.monotonic() + 120
        while self.depth() < len(frames) and time.monotonic() < deadline:
            time.sleep(0.2)
        return rate

    def depth(self) -> int:
        conn = pika.BlockingConnection(pika.URLParameters(self.cluster.amqp_urls[0]))
        try:
            return int(conn.channel().queue_declare(EVENT_QUEUE, passive=True).method.message_count)
        finally:
            conn.close()

    def raw(self, frames: Sequence[Frame]) -> dict[str, Any]:
        """Acknowledged as the listener does (``multiple`` per ``RAW_BATCH``), and one ack per message."""
        self.fill(frames)
        out = _measured(self.cpu, len(frames), lambda: self._consume(len(frames), RAW_BATCH))
        self.fill(frames)
        single = _measured(self.cpu, len(frames), lambda: self._consume(len(frames), 1))
        out["single_ack"] = single
        return out

    def _consume(self, count: int, batch: int) -> float:
        conn = pika.BlockingConnection(pika.URLParameters(self.cluster.amqp_urls[0]))
        channel = conn.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        got, start, tag = 0, time.perf_counter(), 0
        for method, _props, _body in channel.consume(EVENT_QUEUE, inactivity_timeout=30):
            if method is None:
                break
            got, tag = got + 1, method.delivery_tag
            if got % batch == 0 or got >= count:
                channel.basic_ack(tag, multiple=batch > 1)
            if got >= count:
                break
        elapsed = time.perf_counter() - start
        channel.cancel()
        conn.close()
        return got / elapsed

    def listener_args(self, run: str, i: int, n: int) -> list[str]:
        return ["--amqp", ",".join(self.cluster.amqp_urls), "--prefetch", str(self.prefetch)]

    def prepare(self, run: str, n: int, start: Callable[[], Any]) -> None:
        """Nothing: the quorum queue holds the messages whoever consumes them."""

    def forget(self, run: str, n: int) -> None:
        """Nothing: nothing per listener is left on the broker."""

    def cpu(self) -> float:
        return sum(tree_cpu_s(node.proc.pid) for node in self.cluster.nodes if node.proc is not None)

    def stop(self) -> None:
        self.cluster.stop()


class MosquittoBench:
    name = "mosquitto"

    def __init__(self, root: Path, queued: int) -> None:
        self.dir = root / "mosquitto"
        (self.dir / "persist").mkdir(parents=True)
        self.port = _free_port()
        self.max_queued = queued
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self.conf(), encoding="utf-8")
        log = open(self.dir / "mosquitto.log", "ab")  # noqa: SIM115 - the child's
        exe = shutil.which("mosquitto") or "mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log, start_new_session=True)
        log.close()
        _await_port(self.port, self.proc)
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def conf(self) -> str:
        """The shipped broker's queue and window settings (mqtt/central/broker_config.py), persistence
        as docs/mqtt.md's site broker, on loopback without TLS; the queue bound raised if a run needs more."""
        queued = getattr(broker_config, "MAX_QUEUED_MESSAGES", 1_000_000)
        lines = [
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "user root",
            "persistence true",
            f"persistence_location {self.dir / 'persist'}/",
            "autosave_interval 30",
            f"max_queued_messages {max(queued, self.max_queued)}",
            f"max_queued_bytes {getattr(broker_config, 'MAX_QUEUED_BYTES', 0)}",
            f"max_inflight_messages {getattr(broker_config, 'MAX_INFLIGHT_MESSAGES', 1000)}",
            f"max_packet_size {broker_config.MAX_PACKET_SIZE}",
            "set_tcp_nodelay true",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
        ]
        return "\n".join(lines) + "\n"

    def fill(self, frames: Sequence[Frame]) -> float:
        """Acknowledged by the broker = queued in every offline session that subscribed."""
        return _publish([self.url], frames)

    def raw(self, frames: Sequence[Frame]) -> dict[str, Any]:
        consumer = RawMqtt(self.port, "bench-raw")
        consumer.session()
        self.fill(frames)
        try:
            return _measured(self.cpu, len(frames), lambda: consumer.drain(len(frames)))
        finally:
            _forget(self.port, ["bench-raw"])

    @staticmethod
    def client_ids(run: str, n: int) -> list[str]:
        return [f"bench-{run}-{i}" for i in range(n)]

    def listener_args(self, run: str, i: int, n: int) -> list[str]:
        args = ["--broker", self.url, "--client-id", self.client_ids(run, n)[i], "--protocol", "5"]
        return args + (["--no-shared"] if n == 1 else ["--group", f"bench-{run}"])

    def prepare(self, run: str, n: int, start: Callable[[], list[tuple[subprocess.Popen[bytes], Path]]]) -> None:
        """Start the listeners once (their sessions subscribe), then stop them: the sessions stay."""
        started = start()
        try:
            deadline = time.monotonic() + 60
            for proc, log in started:
                while "central_subscribed" not in _text(log):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"a listener did not subscribe; see {log}")
                    time.sleep(0.1)
        finally:
            for proc, _log in started:
                proc.send_signal(signal.SIGTERM)
            for proc, _log in started:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def forget(self, run: str, n: int) -> None:
        _forget(self.port, self.client_ids(run, n))

    def cpu(self) -> float:
        return pid_cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class RawMqtt:
    """A bare paho consumer: persistent session, the centre's plain subscriptions, the listener's
    Receive Maximum, manual acknowledgement of each message as it arrives."""

    def __init__(self, port: int, client_id: str) -> None:
        self.port, self.client_id = port, client_id
        self.got = 0
        self.first = self.last = 0.0
        self.done = threading.Event()
        self.count = 0

    def _client(self) -> paho.Client:
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5, manual_ack=True
        )
        return client

    def _connect(self, client: paho.Client) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = mqtt_transport.SESSION_EXPIRY_MAX
        receive_max = getattr(mqtt_transport, "RECEIVE_MAXIMUM", None)
        if receive_max:
            props.ReceiveMaximum = receive_max
        client.connect("127.0.0.1", self.port, keepalive=30, clean_start=False, properties=props)

    def session(self) -> None:
        """Connect once, subscribe, disconnect: the broker queues for the session from now on."""
        client = self._client()
        subscribed = threading.Event()
        client.on_subscribe = lambda *_a: subscribed.set()
        client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in event_subscriptions(None)])
        self._connect(client)
        client.loop_start()
        try:
            if not subscribed.wait(30):
                raise RuntimeError("the raw consumer did not subscribe")
        finally:
            client.disconnect()
            client.loop_stop()

    def drain(self, count: int, timeout: float = 600) -> float:
        """Come back and consume ``count`` queued messages; events/s from the first to the last."""
        self.count = count
        client = self._client()
        client.on_message = self._message
        self._connect(client)
        client.loop_start()
        try:
            self.done.wait(timeout)
        finally:
            client.disconnect()
            client.loop_stop()
        if self.got < 2:
            raise RuntimeError("the raw consumer got nothing")
        return (self.got - 1) / max(self.last - self.first, 1e-6)

    def _message(self, client: paho.Client, _userdata: Any, message: Any) -> None:
        now = time.perf_counter()
        if not self.got:
            self.first = now
        self.got += 1
        self.last = now
        client.ack(message.mid, message.qos)
        if self.got >= self.count:
            self.done.set()


def _forget(port: int, client_ids: Sequence[str]) -> None:
    """End these persistent sessions (clean start, expiry 0) so they queue nothing more."""
    for client_id in client_ids:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        connected = threading.Event()
        client.on_connect = lambda *_a, ev=connected: ev.set()
        client.connect("127.0.0.1", port, keepalive=30, clean_start=True)
        client.loop_start()
        connected.wait(10)
        client.disconnect()
        client.loop_stop()


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _await_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("mosquitto exited at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("mosquitto did not listen")
