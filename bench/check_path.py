"""Benchmark of the centre's per-event check path: CPU per event of ``CentralProcessor.check``
(topic, frame split, registry lookup, Ed25519 verify, header parse and schema, binding, and for
identity events HPKE open and the IdentityPrivate schema), without a store.

The bench mix of bench/central.py: 200 devices x 50 events, interleaved, 1 in 5 an identity
event. The registry is watched, as ``central listen`` watches it (lookups never reload on the
message thread). Two verifiers in the same process, in alternating rounds so that a noisy
machine hits both alike:

- ``openssl``: Ed25519 through cryptography/OpenSSL (what the centre used before, with
  libsodium's edge rules applied first: :func:`idstation.mqtt.seal.verify_openssl`);
- ``libsodium``: PyNaCl's crypto_sign_open (the centre's default when PyNaCl is installed).

CPU is the process's CPU time (``time.process_time``); the best round of each is reported with
the ratio, and the machine's load (a shared machine is noisy: compare ratios, not absolutes).
Goal (issue 13's throughput plan): <= 110 us per event with libsodium. Timings are reported,
never asserted. Run: ``python bench/check_path.py [--devices 200] [--per-device 50] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.processor import CentralProcessor
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.seal import ED25519_BACKEND, verify_openssl, verify_signature

from tests.integration.central.boxes import Frame, build_frames, interleave
from tests.integration.central.fleet import write_devices

GOAL_US = 110.0


def _cpu_per_event(processor: CentralProcessor, frames: list[Frame]) -> float:
    """Microseconds of process CPU per ``check`` over ``frames``."""
    start = time.process_time()
    for frame in frames:
        processor.check(frame.topic, frame.payload)
    return (time.process_time() - start) / len(frames) * 1e6


def _round(processors: dict[str, CentralProcessor], mixes: dict[str, list[Frame]]) -> dict[str, dict[str, float]]:
    return {name: {mix: _cpu_per_event(p, frames) for mix, frames in mixes.items()} for name, p in processors.items()}


def run(devices: int, per_device: int, rounds: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="idstation-check-path-"))
    sims = write_devices(root / "registry", devices)
    central = X25519PrivateKey.generate()
    frames = interleave(build_frames(sims, per_device, central.public_key()))
    registry = Registry(root / "registry")
    registry.watch()
    try:
        processors = {
            "openssl": CentralProcessor(registry, central, store=None, verify=verify_openssl),  # type: ignore[arg-type]
            "libsodium": CentralProcessor(registry, central, store=None, verify=verify_signature),  # type: ignore[arg-type]
        }
        mixes = {
            "mix": frames,
            "identity": [f for f in frames if f.topic.endswith("/identity")],
            "read_failed": [f for f in frames if f.topic.endswith("/read_failed")],
        }
        _round(processors, {"mix": frames[:500]})  # warm up both: caches, lazy imports
        best: dict[str, dict[str, float]] = {}
        for _ in range(rounds):
            for name, figures in _round(processors, mixes).items():
                for mix, us in figures.items():
                    best.setdefault(name, {})[mix] = min(us, best.get(name, {}).get(mix, us))
        for p in processors.values():
            assert sum(p.counts.values()) == 0, p.counts  # every event checked clean, no rejection
    finally:
        registry.close()
    after, before = best["libsodium"], best["openssl"]
    return {
        "events": len(frames),
        "identity_share": round(len(mixes["identity"]) / len(frames), 3),
        "rounds": rounds,
        "default_backend": ED25519_BACKEND,
        "us_per_event": {name: {mix: round(us, 1) for mix, us in figures.items()} for name, figures in best.items()},
        "ratio_libsodium_to_openssl": {mix: round(after[mix] / before[mix], 3) for mix in after},
        "goal_us": GOAL_US,
        "goal_met": after["mix"] <= GOAL_US,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--per-device", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    print(json.dumps(run(args.devices, args.per_device, args.rounds), indent=2))


if __name__ == "__main__":
    main()
