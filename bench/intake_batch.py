"""The listener's batching (``central listen --max-batch N --max-wait S``) measured without a broker.

A simulated broker hands real frames (genuinely signed, every 5th an HPKE-sealed identity, many
devices interleaved) to :class:`Intake` the way a broker with ``--prefetch P`` does: at most P
deliveries unacknowledged at any time, the next one as soon as an acknowledgement frees a slot.
Each delivery goes through the real pipeline: check (registry, signature, header, seal) ->
record (one store transaction per batch) -> ack -> receipts (noted from the commit, signed and
"published" by a thread like the AMQP ReceiptPump) -> deliver. PostgreSQL runs with durable
commits. Per configuration: events/s and this process's CPU per event, PostgreSQL's CPU per
event, and the batch sizes the intake formed.

usage: python bench/intake_batch.py [--events 10000] [--devices 400] [--prefetch 500]
                                    [--configs 50:0.05,200:0.05,500:0.05,200:0.02,200:0.1] [--store postgresql|sqlite]
"""

from __future__ import annotations

import argparse
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
from idstation.mqtt.central.intake import Intake
from idstation.mqtt.central.processor import CentralProcessor
from idstation.mqtt.central.receipts import ReceiptBatcher
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import open_store
from idstation.mqtt.central.transport import Delivery
from idstation.mqtt.seal import Signer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_record


class PrefetchBroker:
    """A broker's delivery window: at most ``prefetch`` unacknowledged deliveries at a time."""

    def __init__(self, frames: list[tuple[str, bytes]], prefetch: int) -> None:
        self.frames, self.prefetch = frames, prefetch
        self.window = threading.Semaphore(prefetch)
        self.acked = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def feed(self, on_message: Any) -> None:
        for topic, payload in self.frames:
            self.window.acquire()
            on_message(Delivery(topic, payload, time.time()))

    def ack(self, deliveries: Any) -> None:
        with self._lock:
            self.acked += len(deliveries)
            if self.acked >= len(self.frames):
                self.done.set()
        for _ in deliveries:
            self.window.release()

    def requeue(self, deliveries: Any) -> None:
        raise RuntimeError("the store refused a batch")

    def pause(self) -> None: ...
    def resume(self) -> None: ...


def enrol_and_build(path: Path, devices: int, total: int) -> tuple[Registry, list[tuple[str, bytes]]]:
    """A watched registry of ``devices`` boxes and their real frames, ``total`` in all, interleaved."""
    sys.path.insert(0, str(store_record.ROOT))
    from tests.integration.central.boxes import build_frames, interleave
    from tests.integration.central.fleet import write_devices

    fleet = write_devices(path, devices)
    registry = Registry(path)
    registry.watch()  # as central listen does: no refresh on the message path
    streams = build_frames(fleet, max(1, total // devices), CENTRAL.public_key())
    return registry, [(f.topic, f.payload) for f in interleave(streams)]


CENTRAL = X25519PrivateKey.generate()


def run(
    frames: list[tuple[str, bytes]], registry: Registry, url: str, config: tuple[int, float], *, prefetch: int, cpu: Any
) -> dict[str, Any]:
    max_batch, max_wait = config
    store = open_store(url, migrate=True)
    broker = PrefetchBroker(frames, prefetch)
    receipts = ReceiptBatcher(Signer(Ed25519PrivateKey.generate()), store, interval=0.2)
    sizes: list[int] = []
    intake = Intake(
        CentralProcessor(registry, CENTRAL, store),
        broker,  # type: ignore[arg-type] - the transport port's parts the intake uses
        on_event=lambda _e: None,
        receipts=receipts,
        max_batch=max_batch,
        max_wait=max_wait,
        on_batch=lambda n, _s: sizes.append(n),
        capacity=prefetch,
    )
    stop = threading.Event()

    def pump() -> None:  # the ReceiptPump's job: receipts off the consumer's threads
        while not stop.wait(0.05):
            receipts.publish_due(lambda _t, _p: True)

    pumper = threading.Thread(target=pump, daemon=True)
    intake.start()
    pumper.start()
    wall0, client0, server0 = time.perf_counter(), time.process_time(), cpu()
    feeder = threading.Thread(target=broker.feed, args=(intake.on_message,), daemon=True)
    feeder.start()
    finished = broker.done.wait(600)
    wall, client, server = time.perf_counter() - wall0, time.process_time() - client0, cpu() - server0
    stop.set()
    intake.stop()
    pumper.join(5)
    store.close()
    n = len(frames)
    return {
        "max_batch": max_batch,
        "max_wait": max_wait,
        "finished": finished,
        "events_per_s": n / wall,
        "client_cpu_us": 1e6 * client / n,
        "server_cpu_us": 1e6 * server / n,
        "mean_batch": statistics.fmean(sizes) if sizes else 0.0,
        "receipts": receipts.sent,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=400)
    ap.add_argument("--prefetch", type=int, default=500)
    ap.add_argument("--configs", default="50:0.05,200:0.05,500:0.05,200:0.02,200:0.1")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    args = ap.parse_args(argv)
    configs = [(int(b), float(w)) for b, w in (c.split(":") for c in args.configs.split(","))]
    tmp = Path(tempfile.mkdtemp(prefix="idstation-intake-bench-"))
    registry, frames = enrol_and_build(tmp / "registry", args.devices, args.events)
    print(f"{len(frames)} frames of {args.devices} devices, prefetch {args.prefetch}, store {args.store}")
    with store_record.backend_of(args.store, tmp) as (new_url, cpu):
        for rnd in range(args.rounds):
            for config in configs:
                url = new_url(f"{config[0]}-{config[1]}-{rnd}")
                r = run(frames, registry, url, config, prefetch=args.prefetch, cpu=cpu)
                print(
                    f"max-batch {r['max_batch']:4d} max-wait {r['max_wait']:.3f}: {r['events_per_s']:7.0f} ev/s  "
                    f"client {r['client_cpu_us']:5.0f} us  server {r['server_cpu_us']:4.0f} us CPU/event  "
                    f"mean batch {r['mean_batch']:5.1f}  receipts {r['receipts']}"
                    + ("" if r["finished"] else "  UNFINISHED"),
                    flush=True,
                )
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
