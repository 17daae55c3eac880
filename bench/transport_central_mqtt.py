"""bench/transport_central.py's mosquitto half: a listener's persistent session drained.

For each broker in-flight window (``max_inflight_messages``, mosquitto 2.0's cap on what it sends
a client before PUBACKs come back) a fresh mosquitto; for each consumer a persistent session
(subscribed, then offline), filled with the messages (QoS 1, acknowledged by the broker = queued
in the offline session), then drained:

- ``raw``: a bare paho client (MQTT 5, paho's own loop, acknowledging each message on receipt);
- ``transport``: :class:`MqttTransport` (the listener's adapter) into the sink that acknowledges
  in batches from another thread; ``intake``: into the real :class:`Intake`, no-op pipeline;
  ``*_plain_paho``: the same with paho's own client and one ``ack()`` per message (the adapter
  before mqtt/paho_client.py: the same-run A/B);
- ``intake_commit_*_rmN``: the no-op store waits ``--commit-ms`` per batch, Receive Maximum N.

Also the broker's memory per queued message (RSS growth over the fill of the first session).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from idstation.mqtt import paho_client
from idstation.mqtt.central import mqtt_transport
from idstation.mqtt.central.mqtt_transport import MqttTransport
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.transport_central import PAYLOAD_SIZE, drive_transport, pid_cpu_s, routing_keys, run_rows

_MAX_PACKET = 4 * 1024 * 1024 + 64 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(self, root: Path, *, max_inflight: int, max_queued: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        conf = root / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "user root",
                    "persistence false",
                    f"max_queued_messages {max_queued}",
                    "max_queued_bytes 0",
                    f"max_inflight_messages {max_inflight}",
                    f"max_packet_size {_MAX_PACKET}",
                    "set_tcp_nodelay true",
                    "log_dest stderr",
                    "log_type error",
                ]
            )
            + "\n"
        )
        exe = shutil.which("mosquitto") or "mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.sessions = 0

    def cpu(self) -> float:
        return pid_cpu_s(self.proc.pid)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def fill(self, count: int) -> None:
        """QoS 1, 100 in flight, until the broker acknowledged every message."""
        done, acked = threading.Event(), [0]

        def on_publish(*_a: Any) -> None:
            acked[0] += 1
            if acked[0] >= count:
                done.set()

        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-fill", protocol=paho.MQTTv5)
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.on_publish = on_publish
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        payload = bytes(PAYLOAD_SIZE)
        for key in routing_keys(count):
            client.publish(key.replace(".", "/"), payload, qos=1)
        done.wait(300)
        client.disconnect()
        client.loop_stop()

    def transport(self, client_id: str, receive_maximum: int | None) -> MqttTransport:
        """None: no Receive Maximum in CONNECT (the broker's max_inflight_messages applies)."""
        return MqttTransport(
            self.url,
            client_id,
            shared=False,
            protocol="5",
            max_packet_size=_MAX_PACKET,
            receive_maximum=receive_maximum,
        )

    def new_session(self, receive_maximum: int | None) -> str:
        """A listener's persistent session: subscribed, then offline (it keeps queueing)."""
        self.sessions += 1
        client_id = f"bench-listener-{self.sessions}"
        transport = self.transport(client_id, receive_maximum)
        transport.start(lambda _d: None)
        transport.wait_ready(10)
        transport.stop()
        return client_id

    def drain_transport(
        self, count: int, *, receive_maximum: int | None, intake: bool, **options: Any
    ) -> tuple[int, float | None]:
        return drive_transport(self.transport(self._pending, receive_maximum), count, intake=intake, **options)

    def raw(self, count: int, *, receive_maximum: int | None) -> tuple[int, float | None]:
        """A bare paho consumer of the session ``_pending``: paho's loop, auto-acknowledge."""
        state: dict[str, Any] = {"got": 0, "first": None}
        done = threading.Event()

        def on_message(_c: Any, _u: Any, _m: Any) -> None:
            if state["first"] is None:
                state["first"] = time.perf_counter()
            state["got"] += 1
            if state["got"] >= count:
                done.set()

        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self._pending, protocol=paho.MQTTv5)
        client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0xFFFFFFFF
        if receive_maximum:
            props.ReceiveMaximum = receive_maximum
        client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        client.loop_start()
        done.wait(300)
        time.sleep(0.05)  # the last PUBACKs leave
        client.disconnect()
        client.loop_stop()
        return state["got"], state["first"]

    def filler(self, receive_maximum: int | None) -> Any:
        """fill() for the next consumer: a fresh offline session, then the messages."""

        def fill(count: int) -> None:
            self._pending = self.new_session(receive_maximum)
            self.fill(count)

        return fill

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class _PlainClient(paho.Client):
    def buffered(self) -> bool:
        return False


def _ack_each(client: Any, mids: Sequence[int]) -> None:
    for mid in mids:
        client.ack(mid, 1)


@contextlib.contextmanager
def plain_paho() -> Iterator[None]:
    """The adapter as it was before the read buffer and the batched PUBACKs (the A/B rows)."""
    saved = paho_client.BufferedClient, mqtt_transport.send_pubacks
    paho_client.BufferedClient, mqtt_transport.send_pubacks = _PlainClient, _ack_each  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        paho_client.BufferedClient, mqtt_transport.send_pubacks = saved  # type: ignore[misc]


def _plain(consume: Any) -> Any:
    def run(count: int) -> Any:
        with plain_paho():
            return consume(count)

    return run


def queued_bytes_per_message(root: Path, count: int) -> float:
    broker = Mosquitto(root / "memory", max_inflight=20, max_queued=count + 10)
    try:
        broker._pending = broker.new_session(None)
        before = broker.rss_kib()
        broker.fill(count)
        return round((broker.rss_kib() - before) * 1024 / count)
    finally:
        broker.stop()


def bench_mosquitto(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "payload_bytes": PAYLOAD_SIZE,
        "broker_bytes_per_queued_message": queued_bytes_per_message(root, args.messages),
        "transport_default_receive_maximum": getattr(mqtt_transport, "RECEIVE_MAXIMUM", None),
    }
    for inflight in (20, 1000):
        broker = Mosquitto(root / f"inflight{inflight}", max_inflight=inflight, max_queued=args.messages + 10)
        rows: dict[str, Any] = {}
        default = getattr(mqtt_transport, "RECEIVE_MAXIMUM", None)
        drain = broker.drain_transport
        consumers: list[tuple[str, int | None, Any]] = [
            ("raw", default, partial(broker.raw, receive_maximum=default)),
            ("transport", default, partial(drain, receive_maximum=default, intake=False)),
            ("intake", default, partial(drain, receive_maximum=default, intake=True)),
            ("transport_bursts", default, partial(drain, receive_maximum=default, intake=False, bursts=True)),
            ("intake_bursts", default, partial(drain, receive_maximum=default, intake=True, bursts=True)),
            ("transport_plain_paho", default, _plain(partial(drain, receive_maximum=default, intake=False))),
            ("intake_plain_paho", default, _plain(partial(drain, receive_maximum=default, intake=True))),
        ]
        for rm in (20, default, 65535):
            consumers.append(
                (
                    f"intake_commit_{args.commit_ms}ms_rm{rm}",
                    rm,
                    partial(drain, receive_maximum=rm, intake=True, commit_ms=args.commit_ms),
                )
            )
        try:
            for label, rm, consume in consumers:
                rows.update(run_rows({label: consume}, broker.filler(rm), broker.cpu, args.messages, f"mosq{inflight}"))
        finally:
            broker.stop()
        out[f"broker_max_inflight_{inflight}"] = rows
    return out
