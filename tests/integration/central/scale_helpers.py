"""Listener processes (``idstation central listen --amqp``) and store checks for the scale-out tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.integration.central.amqp_helpers import wait_for


def central_keys(directory: Path) -> X25519PrivateKey:
    """central_key.pem and receipt_key.pem beside it (receipts on, as in production)."""
    none = serialization.NoEncryption()
    central = X25519PrivateKey.generate()
    pem = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, none
    (directory / "central_key.pem").write_bytes(central.private_bytes(*pem))
    (directory / "receipt_key.pem").write_bytes(Ed25519PrivateKey.generate().private_bytes(*pem))
    return central


def _free_port() -> int:
    import random
    import socket

    for _ in range(100):
        port = random.randrange(33_000, 35_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@dataclass
class ListenerPool:
    """N listener processes on one store and one cluster; each restartable, each with its logs."""

    workdir: Path
    store: str
    amqp: list[str]
    registry: Path
    count: int = 3
    prefetch: int = 200
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    starts: int = 0

    def __post_init__(self) -> None:
        self.procs = [None] * self.count
        self.ports = [_free_port() for _ in range(self.count)]

    def start(self, i: int, *, fault: str | None = None) -> None:
        exe = shutil.which("idstation") or str(Path(sys.executable).with_name("idstation"))
        argv = [exe, "central", "listen", "--store", self.store, "--amqp", ",".join(self.amqp)]
        argv += ["--registry", str(self.registry), "--key", str(self.workdir / "central_key.pem")]
        argv += ["--prefetch", str(self.prefetch), "--metrics", f"127.0.0.1:{self.ports[i]}", "--retention-days", "0"]
        argv += ["--json"]  # one line per delivered event on stdout: the redeliveries show there
        env = {k: v for k, v in os.environ.items() if k != "IDSTATION_TEST_FAULT"}
        if fault:
            env["IDSTATION_TEST_FAULT"] = fault
        self.starts += 1
        name = f"listener-{i}-{self.starts}"
        with open(self.workdir / f"{name}.log", "wb") as log, open(self.workdir / f"{name}.out", "wb") as out:
            self.procs[i] = subprocess.Popen(argv, stdout=out, stderr=log, env=env)

    def start_all(self) -> None:
        for i in range(self.count):
            self.start(i)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)

    def revive(self) -> int:
        """Restart every listener that died (a fault or a kill); how many were restarted."""
        dead = [i for i, p in enumerate(self.procs) if p is None or p.poll() is not None]
        for i in dead:
            self.start(i)
        return len(dead)

    def ready(self, i: int) -> int:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports[i]}/ready", timeout=5).status_code
        except httpx.HTTPError:
            return 0

    def wait_ready(self, timeout: float = 90) -> bool:
        return all(wait_for(lambda i=i: self.ready(i) == 200, timeout, 0.3) for i in range(self.count))

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("listener-*.log")))

    def redeliveries(self) -> int:
        """Events seen again: rejected as duplicates (stderr) or delivered once more because their
        first listener died between the commit and the delivery (stdout, ``"sequence":"duplicate"``)."""
        out = "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("listener-*.out")))
        return self.log_text().count('"reason": "duplicate"') + out.count('"sequence":"duplicate"')


def stored_count(url: str) -> int:
    with contextlib.suppress(psycopg.Error), psycopg.connect(url, connect_timeout=5) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    return -1


def stream_report(url: str) -> dict[str, tuple[int, int, int, int]]:
    """device_id -> (events, distinct event ids, distinct seqs, max seq) of its data events."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id, count(*), count(DISTINCT event_id), count(DISTINCT seq), max(seq) FROM events "
            "WHERE kind IN ('identity', 'read_failed') GROUP BY device_id"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def open_gaps(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM gaps").fetchone()[0])


def wait_stored(url: str, count: int, timeout: float, tick=None) -> int:
    deadline = time.monotonic() + timeout
    have = stored_count(url)
    while have < count and time.monotonic() < deadline:
        if tick is not None:
            tick()
        time.sleep(0.25)
        have = stored_count(url)
    return have
