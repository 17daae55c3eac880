"""Benchmark of the centre's per-event check path: CPU per event of ``CentralProcessor.check``
(topic, frame split, registry lookup, Ed25519 verify, header parse and schema, binding, and for
identity events HPKE open and the IdentityPrivate schema), without a store.

The bench mix of bench/central.py: 200 devices x 50 events, interleaved, 1 in 5 an identity
event. The registry is watched, as ``central listen`` watches it (lookups never reload on the
message thread). Two verifiers in the same process, in alternating rounds so that a noisy
machine hits both alike:

- ``openssl``: Ed25519 through cryptography/OpenSSL (what the centre used before, with
  libsodium's edge rules applied first: :func:`idstation.mqtt.seal.verify_openssl`);
- ``pynacl``: libsodium through PyNaCl's binding (crypto_sign_open, which releases the GIL per call);
- ``libsodium``: libsodium's crypto_sign_verify_detached called with the GIL held (the centre's
  default when PyNaCl is installed: :mod:`idstation.mqtt.ed25519`).

``contended``: the same check loop's own CPU (``time.thread_time``) while a second thread of the
process does what a listener's transport and commit threads do (socket round trips between short
stretches of Python), for ``pynacl`` and ``libsodium``: a call that releases the GIL hands it to
the other thread every time, and the hand-overs cost the check thread CPU.

CPU is the process's CPU time (``time.process_time``); the best round of each is reported with
the ratio, and the machine's load (a shared machine is noisy: compare ratios, not absolutes).
``--instructions`` also counts the instructions per event of each verifier under valgrind's
cachegrind (a run over N events minus a run over none: independent of the machine's load; a few
minutes). Goal (issue 13's throughput plan): <= 110 us per event with libsodium. Timings are
reported, never asserted. Run: ``python bench/check_path.py [--rounds 5] [--instructions]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
from companion import companion
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.processor import CentralProcessor
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.ed25519 import ED25519_BACKEND, verify_openssl, verify_pynacl, verify_signature

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
            "pynacl": CentralProcessor(registry, central, store=None, verify=verify_pynacl),  # type: ignore[arg-type]
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
        contended = _contended({k: processors[k] for k in ("pynacl", "libsodium")}, frames, rounds)
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
        "contended_us_per_event": {name: round(us, 1) for name, us in contended.items()},
        "contended_ratio_libsodium_to_pynacl": round(contended["libsodium"] / contended["pynacl"], 3),
        "goal_us": GOAL_US,
        "goal_met": after["mix"] <= GOAL_US,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def _contended(processors: dict[str, CentralProcessor], frames: list[Frame], rounds: int) -> dict[str, float]:
    """Best thread CPU per event of each processor's check loop beside a busy companion thread."""
    best: dict[str, float] = {}
    with companion():
        for _ in range(rounds):
            for name, processor in processors.items():
                start = time.thread_time()
                for frame in frames:
                    processor.check(frame.topic, frame.payload)
                us = (time.thread_time() - start) / len(frames) * 1e6
                best[name] = min(us, best.get(name, us))
    return best


def _child(spec: str, verifier: str, count: int) -> None:
    """Under cachegrind: check ``count`` events (after 50 to warm up) with one verifier."""
    with open(spec, "rb") as f:
        data = pickle.load(f)  # written by _instructions a moment ago
    registry = Registry(data["registry"])
    registry.refresh()
    central = X25519PrivateKey.from_private_bytes(data["central"])
    verify = verify_openssl if verifier == "openssl" else verify_signature
    processor = CentralProcessor(registry, central, store=None, verify=verify)  # type: ignore[arg-type]
    registry.watch(interval=3600.0, full_scan_s=3600.0)  # lookups read the snapshot, as in central listen
    frames = data["frames"]
    for topic, payload in frames[: 50 + count]:
        processor.check(topic, payload)
    registry.close()


def _instructions(devices: int, count: int) -> dict[str, Any]:
    """Instructions per event of each verifier: cachegrind over ``count`` events minus over none."""
    if shutil.which("valgrind") is None:
        return {"error": "valgrind is not installed"}
    root = Path(tempfile.mkdtemp(prefix="idstation-check-path-cg-"))
    sims = write_devices(root / "registry", devices)
    central = X25519PrivateKey.generate()
    frames = interleave(build_frames(sims, max(1, (count + 50) // devices + 1), central.public_key()))
    spec = root / "frames.pickle"
    spec.write_bytes(
        pickle.dumps(
            {
                "registry": str(root / "registry"),
                "central": central.private_bytes_raw(),
                "frames": [(f.topic, f.payload) for f in frames],
            }
        )
    )
    python = os.path.realpath(sys.executable)
    refs: dict[str, int] = {}
    for verifier in ("openssl", "libsodium"):
        for n in (0, count):
            out = subprocess.run(
                [
                    "valgrind",
                    "--tool=cachegrind",
                    "--cache-sim=no",
                    "--cachegrind-out-file=/dev/null",
                    python,
                    __file__,
                    "--child",
                    str(spec),
                    verifier,
                    str(n),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stderr
            match = re.search(r"I\s+refs:\s+([\d,]+)", out)
            assert match is not None, out[-2000:]
            refs[f"{verifier}/{n}"] = int(match.group(1).replace(",", ""))
    per = {v: (refs[f"{v}/{count}"] - refs[f"{v}/0"]) / count for v in ("openssl", "libsodium")}
    return {
        "events": count,
        "instructions_per_event": {v: round(x) for v, x in per.items()},
        "ratio_libsodium_to_openssl": round(per["libsodium"] / per["openssl"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--per-device", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instructions", type=int, nargs="?", const=800, default=0, metavar="EVENTS")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return
    report = run(args.devices, args.per_device, args.rounds)
    if args.instructions:
        report["cachegrind"] = _instructions(args.devices, args.instructions)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
