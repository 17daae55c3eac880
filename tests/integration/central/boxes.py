"""Simulated boxes for the centre's scale tests and bench/central.py: genuinely signed (and, for
identity events, HPKE-sealed) frames, published over MQTT by a few connections that each carry
several boxes' streams. Like a box's outbox, a connection republishes everything the broker has
not acknowledged after it reconnects — to the next node of the cluster when its node is gone."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for

from tests.integration.central.fleet import SimDevice

PRIVATE = {
    "source": "chip",
    "citizen": {"id_number": "079203004512", "full_name": "Trần Thị Hoàng Yến", "date_of_birth": "12/03/2003"},
    "verification": {"passive_auth": "valid"},
}


@dataclass(frozen=True)
class Frame:
    device_id: str
    seq: int
    event_id: str
    topic: str
    payload: bytes


def build_frames(
    devices: Sequence[SimDevice], per_device: int, central: X25519PublicKey, *, identity_every: int = 5
) -> list[list[Frame]]:
    """``per_device`` data events (seq 1..N) per device; every ``identity_every``-th one an identity."""
    out = []
    for dev in devices:
        signer = Signer(dev.key)
        builder = EventBuilder(dev.device_id, dev.site, dev.counter, signer, central, clock_synced=lambda: True)
        frames = []
        for seq in range(1, per_device + 1):
            if identity_every and seq % identity_every == 0:
                built = builder.build("identity", seq, private=PRIVATE)
                kind = "identity"
            else:
                built = builder.build("read_failed", seq, reason="no_card", detail="timeout")
                kind = "read_failed"
            topic = topic_for(dev.site, dev.counter, kind)
            frames.append(Frame(dev.device_id, seq, built.event_id, topic, built.frame))
        out.append(frames)
    return out


def interleave(streams: Sequence[Sequence[Frame]]) -> list[Frame]:
    """Round-robin over the streams, each in seq order (boxes publishing side by side)."""
    mixed: list[Frame] = []
    for row in itertools.zip_longest(*streams):
        mixed.extend(f for f in row if f is not None)
    return mixed


class Gateway(threading.Thread):
    """One MQTT connection publishing frames QoS 1 until the broker acknowledged every one."""

    def __init__(self, urls: Sequence[str], frames: Sequence[Frame], name: str, *, rate: float = 0.0) -> None:
        super().__init__(name=name, daemon=True)
        self.urls, self.rate = list(urls), rate
        self.pending: dict[int, Frame] = dict(enumerate(frames))
        self.connections = 0
        self.done = threading.Event()
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._halt.set()

    def remaining(self) -> int:
        with self._lock:
            return len(self.pending)

    def run(self) -> None:
        nodes: Iterator[str] = itertools.cycle(self.urls)
        deadline = time.monotonic() + 600  # bounded
        while self.remaining() and not self._halt.is_set() and time.monotonic() < deadline:
            try:
                self._session(next(nodes))
            except OSError:
                time.sleep(0.2)
        self.done.set()

    def _session(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        lost = threading.Event()
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"{self.name}-{self.connections}", protocol=paho.MQTTv311
        )
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        inflight: dict[int, int] = {}  # mid -> key of self.pending
        early: set[int] = set()  # acknowledged before publish() returned its mid

        def acked(_c, _u, mid, _rc, _p) -> None:
            with self._lock:
                key = inflight.pop(mid, None)
                if key is None:
                    early.add(mid)
                else:
                    self.pending.pop(key, None)

        client.on_publish = acked
        client.on_disconnect = lambda *_a: lost.set()
        client.connect(host, int(port), keepalive=10)
        self.connections += 1
        client.loop_start()
        try:
            with self._lock:
                todo = sorted(self.pending.items())
            for n, (key, frame) in enumerate(todo):
                if lost.is_set() or self._halt.is_set():
                    return
                info = client.publish(frame.topic, frame.payload, qos=1)
                with self._lock:
                    if info.mid in early:
                        early.discard(info.mid)
                        self.pending.pop(key, None)
                    else:
                        inflight[info.mid] = key
                if self.rate and n % 10 == 0:
                    time.sleep(10 / self.rate)
            while self.remaining() and not lost.is_set() and not self._halt.is_set():
                lost.wait(0.1)
        finally:
            client.disconnect()
            client.loop_stop()


def run_gateways(urls: Sequence[str], frames: Sequence[Frame], count: int, *, rate: float = 0.0) -> list[Gateway]:
    """Start ``count`` gateways, each with an interleaved share of whole streams (a box's events
    always travel on one connection, as a box has one)."""
    by_device: dict[str, list[Frame]] = {}
    for frame in frames:
        by_device.setdefault(frame.device_id, []).append(frame)
    shares: list[list[list[Frame]]] = [[] for _ in range(count)]
    for i, stream in enumerate(by_device.values()):
        shares[i % count].append(stream)
    gateways = [Gateway(urls, interleave(share), f"gw{i}", rate=rate / count) for i, share in enumerate(shares)]
    for gw in gateways:
        gw.start()
    return gateways
