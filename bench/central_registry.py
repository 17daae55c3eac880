"""bench/central.py's registry part: lookups on a listener's message thread while revocations and
enrolments land in a 50,000-device registry (max and p99 latency, time until each is enforced)."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.registry import Registry


def registry_latency(path: Path, devices: list[Any], changes: int = 20, *, spare: int = 0) -> dict[str, float]:
    """Lookups on a 'message thread' while another process's tool revokes and enrols (the first
    ``spare`` devices are never revoked: they publish in the runs that follow)."""
    view = Registry(path)
    t0 = time.perf_counter()
    view.watch(interval=0.25)
    first_load = time.perf_counter() - t0
    samples: list[float] = []
    stop = threading.Event()

    def look() -> None:
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            view.by_key_id(devices[i % len(devices)].key_id)
            samples.append(time.perf_counter() - start)
            i += 1
            if i % 1000 == 0:
                time.sleep(0.001)  # let the watcher and the tool run (one core each at most)

    reader = threading.Thread(target=look)
    reader.start()
    tool = Registry(path)
    enforced: list[float] = []
    for n in range(changes):
        victim = devices[spare + (n * 997) % (len(devices) - spare)]
        start = time.perf_counter()
        tool.revoke(victim.device_id)
        while view.by_key_id(victim.key_id) is not None and time.perf_counter() - start < 10:
            time.sleep(0.005)
        enforced.append(time.perf_counter() - start)
        tool.add_device(f"bench-new-{n}", "bench", "c0", Ed25519PrivateKey.generate().public_key())
        time.sleep(0.1)
    stop.set()
    reader.join()
    view.close()
    samples.sort()
    return {
        "devices": len(devices),
        "first_load_s": round(first_load, 2),
        "lookups": len(samples),
        "lookup_max_ms": round(samples[-1] * 1000, 3),
        "lookup_p99_us": round(samples[int(len(samples) * 0.99)] * 1e6, 1),
        "revocation_enforced_max_s": round(max(enforced), 3),
        "revocation_enforced_median_s": round(statistics.median(enforced), 3),
    }
