"""Benchmark of the daemon on simulated hardware: `idstation run` as systemd would run it.

Measures, against a loopback mosquitto (amqtt when mosquitto is missing) and the central listener:

- start to READY: from spawning ``idstation run`` to its ``READY=1`` on NOTIFY_SOCKET (goal <= 1 s here);
- resident memory in steady state, after the placements (VmRSS, and the peak VmHWM; goal <= 100 MB);
- CPU while idle with the camera on: the daemon's user+system time over an idle window (goal < 5% of a core);
- placement to acknowledgement: from the simulated card landing on the reader to the centre
  receiving the verified event (the broker has acknowledged it to the box by then).

Timings are reported, never asserted. Run: ``python bench/agent.py [--taps 10] [--idle 10]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _config(tmp: Path, state: Path, taps: int) -> Path:
    path = tmp / "idstation.toml"
    path.write_text(
        f'state_dir = "{state}"\ntrust_test_csca = true\ncsca_dir = "{tmp}"\n'
        '[reader]\nkind = "sim"\npoll_s = 0.25\n[camera]\nkind = "sim"\n'
        '[broker]\nprotocol = "auto"\n[indicators]\nconsole = false\nreader = true\n'
        f"[simulation]\ncount = {taps}\ninterval_s = 0.5\nhold_s = 0.2\nstart_delay_s = 1.0\n"
        "[status]\ninterval_s = 5.0\n",
        encoding="utf-8",
    )
    return path


def _proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])  # kB
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _placements(log: Path) -> list[float]:
    times = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"sim_card_placed"' in line:
            stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
            times.append(dt.datetime.fromisoformat(stamp).timestamp())
    return times


class Centre:
    """Broker, enrolled box and central listener, in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from idstation.agent.sim.broker import LocalBroker
        from idstation.agent.sim.provision import provision_for_tests
        from idstation.mqtt.central.listener import CentralListener
        from idstation.mqtt.central.registry import Registry

        self.received: list[float] = []
        self.cond = threading.Condition()
        self.impl = "mosquitto" if shutil.which("mosquitto") else "amqtt"
        self.broker = LocalBroker(tmp / "broker", implementation=self.impl).start()
        self.protocol = "auto" if self.impl == "mosquitto" else "3.1.1"
        key = X25519PrivateKey.generate()
        registry = Registry(tmp / "registry", create=True)
        self.state = tmp / "box"
        url = self.broker.url
        provision_for_tests(self.state, "bench", "c01", tmp / "ca", key.public_key(), url, registry=registry)
        self.listener = CentralListener(
            self.broker.url, registry, key, on_event=self._on_event, state_path=tmp / "c.sqlite", protocol=self.protocol
        )
        self.listener.start()
        self.listener.wait_ready(15)

    def _on_event(self, event: Any) -> None:
        if event.kind == "identity":
            with self.cond:
                self.received.append(time.time())
                self.cond.notify_all()

    def wait_for(self, n: int, timeout: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= n, timeout)

    def close(self) -> None:
        self.listener.stop()
        self.broker.stop()


def measure(tmp: Path, centre: Centre, taps: int, idle: float) -> dict[str, Any]:
    """Run the daemon, wait for the taps, then sample memory and idle CPU."""
    config = _config(tmp, centre.state, taps)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / "notify.sock"))
    notify.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp / "notify.sock"), "IDSTATION_BROKER__PROTOCOL": centre.protocol}
    log = tmp / "run.log"
    with log.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "idstation.agent.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    try:
        while b"READY=1" not in notify.recv(4096):
            pass
        out: dict[str, Any] = {"ready_s": time.monotonic() - started}
        centre.wait_for(taps, 30 + 3 * taps)
        time.sleep(2.0)  # let the last card leave and the status settle
        out["peak"] = _proc_status(proc.pid)["VmHWM"]
        cpu0, wall0 = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle)
        out["idle_cpu"] = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - wall0) * 100
        out["rss"] = _proc_status(proc.pid)["VmRSS"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        notify.close()
    placed = _placements(log)
    out["latencies"] = [(r - p) * 1000 for p, r in zip(placed, centre.received, strict=False)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=10)
    parser.add_argument("--idle", type=float, default=10.0, help="idle window for the CPU measurement (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="idstation-bench-") as tmp_name:
        tmp = Path(tmp_name)
        centre = Centre(tmp)
        try:
            r = measure(tmp, centre, args.taps, args.idle)
        finally:
            centre.close()
    print(f"idstation run on simulated hardware, broker {centre.impl}, {args.taps} taps")
    print(f"start to READY:                 {r['ready_s'] * 1000:7.0f} ms   (goal <= 1000 ms)")
    rss, peak = r["rss"] / 1024, r["peak"] / 1024
    print(f"resident memory, steady state:  {rss:7.1f} MB   (peak {peak:.1f} MB; goal <= 100 MB)")
    print(f"CPU idle, camera on ({args.idle:.0f} s):     {r['idle_cpu']:7.2f} %    of one core (goal < 5 %)")
    lat = r["latencies"]
    if lat:
        print(
            f"placement to centre (verified): median {statistics.median(lat):.0f} ms, max {max(lat):.0f} ms "
            f"over {len(lat)} taps (sim camera render + QR decode + chip read + MQTT)"
        )
    print(f"events received: {len(centre.received)} of {args.taps}")
    return 0 if len(centre.received) == args.taps else 1


if __name__ == "__main__":
    sys.exit(main())
