"""Hostile MQTT traffic against a real listener on a real mosquitto: every bad message is rejected
with a reason and acknowledged, the next genuine event is accepted, and a huge publish never
reaches the listener's memory (MQTT 5 Maximum Packet Size)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import MAGIC, Signer, _suite, decode_frame, encode_frame, seal_info
from idstation.mqtt.topics import topic_for
from paho.mqtt.properties import Properties

from .helpers import PRIVATE, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TOPIC = topic_for("hn-01", "c01", "identity")


class ListenerProcess:
    """tests/integration/mqtt/listener_proc.py in a subprocess, its output collected by a thread."""

    def __init__(self, url: str, registry: Path, key: Path, state: Path, protocol: str) -> None:
        argv = [sys.executable, "-m", "tests.integration.mqtt.listener_proc", url, str(registry), str(key)]
        self.log = state.with_suffix(".log").open("w")
        self.proc = subprocess.Popen(
            [*argv, str(state), protocol], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True,
        )  # fmt: skip
        self.lines: list[dict[str, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert wait_for(lambda: any("ready" in line for line in self.lines), 30), "the listener did not subscribe"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def accepted(self) -> list[str]:
        return [line["accepted"] for line in list(self.lines) if "accepted" in line]

    def rejected(self) -> list[str]:
        return [line["rejected"] for line in list(self.lines) if "rejected" in line]

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return kb / 1024

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.log.close()


class Attacker:
    """A bare MQTT client publishing whatever bytes it is given."""

    def __init__(self, port: int) -> None:
        self.acks: set[int] = set()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker", protocol=mqtt.MQTTv5)
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self.acks.add(mid)
        self.client.connect("127.0.0.1", port, properties=Properties(1))
        self.client.loop_start()

    def publish(self, payload: bytes, topic: str = TOPIC, timeout: float = 30) -> None:
        info = self.client.publish(topic, payload, qos=1)
        assert wait_for(lambda: info.mid in self.acks, timeout), "the broker did not acknowledge"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def world(mosquitto, registry, central_key, enrol, tmp_path):
    device = enrol("box-1", "hn-01", "c01")
    builder = EventBuilder("box-1", "hn-01", "c01", Signer(device.key), central_key.public)
    attacker = Attacker(mosquitto.port)
    listeners: list[ListenerProcess] = []

    def listen(protocol: str = "5") -> ListenerProcess:
        state = tmp_path / f"state{len(listeners)}.sqlite"
        listeners.append(ListenerProcess(mosquitto.url, registry.path, central_key.path, state, protocol))
        return listeners[-1]

    yield builder, attacker, listen
    attacker.close()
    for listener in listeners:
        listener.close()


def _genuine_is_accepted(builder: EventBuilder, attacker: Attacker, listener: ListenerProcess, seq: int) -> None:
    genuine = builder.build("identity", seq, private=PRIVATE)
    attacker.publish(genuine.frame)
    assert wait_for(lambda: genuine.event_id in listener.accepted(), 20), listener.lines


def _unsigned(key_id: str, header: bytes) -> bytes:
    kid = key_id.encode()
    return MAGIC + bytes([len(kid)]) + kid + struct.pack(">I", len(header)) + header + b"\0" * 64


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_an_unsigned_deeply_nested_frame_is_rejected_and_the_next_event_accepted(world, protocol: str) -> None:
    builder, attacker, listen = world
    listener = listen(protocol)
    attacker.publish(_unsigned(builder.signer.key_id, b"[" * 100_000))
    attacker.publish(_unsigned(builder.signer.key_id, b"[" * 10_000))
    _genuine_is_accepted(builder, attacker, listener, 1)
    assert listener.rejected() == ["malformed", "bad_signature"]


def test_a_signed_nested_sealed_part_is_rejected_and_the_next_event_accepted(world, central_key) -> None:
    builder, attacker, listen = world
    listener = listen()
    header = decode_frame(builder.build("identity", 1, private=PRIVATE).frame).header
    plaintext = b'{"citizen":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    info = seal_info(header["device_id"], header["event_id"])
    attacker.publish(encode_frame(header, _suite().encrypt(plaintext, central_key.public, info=info), builder.signer))
    _genuine_is_accepted(builder, attacker, listener, 2)
    assert listener.rejected() == ["undecryptable"]


def test_a_signed_seq_of_2_pow_63_is_rejected_and_the_next_event_accepted(world) -> None:
    builder, attacker, listen = world
    listener = listen()
    frame = decode_frame(builder.build("identity", 1, private=PRIVATE).frame)
    attacker.publish(encode_frame({**frame.header, "seq": 2**63}, frame.sealed, builder.signer))
    _genuine_is_accepted(builder, attacker, listener, 1)
    _genuine_is_accepted(builder, attacker, listener, 2)
    assert listener.rejected() == ["bad_header"]


def test_a_200_mb_publish_never_reaches_the_listener(world) -> None:
    builder, attacker, listen = world
    listener = listen("5")
    before = listener.peak_rss_mb()
    attacker.publish(b"IDS1" + b"\0" * (200 * 1024 * 1024), timeout=120)
    _genuine_is_accepted(builder, attacker, listener, 1)
    peak = listener.peak_rss_mb()
    # the broker drops it for this client: the listener's peak stays near its baseline (it was
    # 54 -> 653 MB before the cap); generous bound for a busy machine
    assert peak < before + 100, (before, peak)
    assert listener.rejected() == []
