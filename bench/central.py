"""Central benchmark, all in one run on this machine: a 3-node RabbitMQ cluster, PostgreSQL 15
(durable commits: fsync on), listener processes started with ``idstation central listen``.

1. the registry at scale: 50,000 devices, a watching registry; max and p99 lookup latency on the
   message thread while revocations and enrolments land, and the time until each is enforced;
2. raw consumption: the same N messages (already in the shared quorum queue) consumed and
   acknowledged by a bare pika consumer with the same prefetch (the broker's ceiling);
3. end to end: broker -> verify -> decrypt -> PostgreSQL commit -> ack -> receipt, with 1 and 2
   listener processes, and the SQLite store with 1 (ratio to raw);
4. a burst (default 100,000 events) drained by the listeners; their peak memory (VmHWM) with
   the prefetch bounding what each holds.

The same frames (genuinely signed; every 5th an HPKE-sealed identity) are used for every run,
each time into a fresh database, so every run does the same work.

usage: python bench/central.py [--events 20000] [--burst 100000] [--boxes 200] [--prefetch 500]
                               [--registry-devices 50000] [--skip-burst] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pika
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.amqp import EVENT_QUEUE, declare_topology
from idstation.mqtt.central.registry import Registry

from tests.fixtures.postgres import PostgresServer
from tests.fixtures.rabbitmq import RabbitCluster
from tests.integration.central.boxes import Frame, build_frames, interleave, run_gateways
from tests.integration.central.fleet import write_devices


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


def preload(cluster: RabbitCluster, frames: list[Frame], gateways: int = 8) -> float:
    """Publish every frame over MQTT (spread over the nodes) into the queue; events/s."""
    start = time.perf_counter()
    gws = run_gateways(cluster.mqtt_urls, frames, gateways)
    for gw in gws:
        gw.join(900)
    elapsed = time.perf_counter() - start
    deadline = time.monotonic() + 120
    while queue_depth(cluster) < len(frames) and time.monotonic() < deadline:
        time.sleep(0.2)
    return len(frames) / elapsed


def queue_depth(cluster: RabbitCluster) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(cluster.amqp_urls[0]))
    try:
        return int(conn.channel().queue_declare(EVENT_QUEUE, passive=True).method.message_count)
    finally:
        conn.close()


def raw_consume(cluster: RabbitCluster, count: int, prefetch: int) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(cluster.amqp_urls[0]))
    channel = conn.channel()
    channel.basic_qos(prefetch_count=prefetch)
    got = 0
    start = time.perf_counter()
    for method, _props, _body in channel.consume(EVENT_QUEUE, inactivity_timeout=30):
        if method is None:
            break
        channel.basic_ack(method.delivery_tag)
        got += 1
        if got >= count:
            break
    elapsed = time.perf_counter() - start
    channel.cancel()
    conn.close()
    return got / elapsed


def stored(url: str) -> int:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def _peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def listeners(n: int, store: str, ctx: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
    exe = shutil.which("idstation") or "idstation"
    procs = []
    for i in range(n):
        argv = [exe, "central", "listen", "--store", store, "--amqp", ",".join(ctx["cluster"].amqp_urls)]
        argv += ["--registry", str(ctx["registry"]), "--key", str(ctx["key"]), "--prefetch", str(ctx["prefetch"])]
        out = open(ctx["logs"] / f"listener-{i}.log", "ab")  # noqa: SIM115 - the child's
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, start_new_session=True))
        out.close()
    return procs


def drain(n: int, store: str, count: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """Start ``n`` listeners on a full queue; events/s from the first commit to the last."""
    procs = listeners(n, store, ctx)
    peak = [0] * n
    try:
        deadline = time.monotonic() + 900
        first = None
        while time.monotonic() < deadline:
            have = stored(store)
            now = time.perf_counter()
            if have and first is None:
                first, first_count = now, have
            for i, p in enumerate(procs):
                peak[i] = max(peak[i], _peak_rss_kb(p.pid))
            if have >= count:
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a listener exited; see {ctx['logs']}")
            time.sleep(0.05)
        done = time.perf_counter()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    assert first is not None
    rate = (count - first_count) / max(done - first, 1e-6)
    return {"listeners": n, "events": count, "events_s": round(rate), "peak_rss_mb": [round(k / 1024) for k in peak]}


def _migrate(url: str) -> str:
    exe = shutil.which("idstation") or "idstation"
    subprocess.run([exe, "central", "migrate", "--store", url], check=True, capture_output=True)
    return url


def fresh_pg(pg: PostgresServer) -> str:
    return _migrate(pg.create_database())


def fresh_sqlite(root: Path) -> str:
    return _migrate(f"sqlite:///{root}/central-{time.time_ns()}.db")


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--registry-devices", type=int, default=50_000)
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def _central_key(path: Path) -> X25519PrivateKey:
    central = X25519PrivateKey.generate()
    pem = central.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return central


def _services(root: Path, ctx: dict[str, Any]) -> None:
    pg_root = root / "pg"
    pg_root.mkdir()
    shutil.chown(pg_root, "postgres", "postgres")
    ctx["pg"] = PostgresServer(pg_root, durable=True)
    ctx["pg"].start()
    ctx["cluster"] = RabbitCluster(root / "mq")
    ctx["cluster"].start_all()
    conn = pika.BlockingConnection(pika.URLParameters(ctx["cluster"].amqp_urls[0]))
    declare_topology(conn.channel())
    conn.close()


def _runs(opts: argparse.Namespace, root: Path, ctx: dict[str, Any], results: dict[str, Any]) -> None:
    cluster, devices, central = ctx["cluster"], ctx["devices"], ctx["central"]
    frames = interleave(build_frames(devices[: opts.boxes], max(1, opts.events // opts.boxes), central.public_key()))
    count = len(frames)
    results["mqtt_publish_events_s"] = round(preload(cluster, frames))
    raw = results["raw_consume_events_s"] = round(raw_consume(cluster, count, opts.prefetch))
    for name, n, store in (
        ("postgresql_1_listener", 1, None),
        ("postgresql_2_listeners", 2, None),
        ("sqlite_1_listener", 1, "sqlite"),
    ):
        url = fresh_sqlite(root) if store == "sqlite" else fresh_pg(ctx["pg"])
        preload(cluster, frames)
        results[name] = drain(n, url, count, ctx)
        results[name]["ratio_to_raw"] = round(results[name]["events_s"] / raw, 3)
        print(json.dumps({name: results[name]}), flush=True)
    if not opts.skip_burst:
        burst = interleave(build_frames(devices[: opts.boxes], max(1, opts.burst // opts.boxes), central.public_key()))
        results["burst_queue_fill_events_s"] = round(preload(cluster, burst))
        results["burst_2_listeners"] = drain(2, fresh_pg(ctx["pg"]), len(burst), ctx)


def main(argv: list[str] | None = None) -> int:
    opts = _options(argv)
    root = Path(tempfile.mkdtemp(prefix="idstation-bench-central-", dir="/tmp"))
    os.chmod(root, 0o755)
    results: dict[str, Any] = {"machine_cores": os.cpu_count()}
    ctx: dict[str, Any] = {"prefetch": opts.prefetch, "logs": root / "logs", "registry": root / "registry"}
    ctx["logs"].mkdir()
    try:
        ctx["devices"] = write_devices(ctx["registry"], opts.registry_devices)
        results["registry"] = registry_latency(ctx["registry"], ctx["devices"], spare=opts.boxes)
        print(json.dumps({"registry": results["registry"]}), flush=True)
        ctx["key"] = root / "central_key.pem"
        ctx["central"] = _central_key(ctx["key"])
        _services(root, ctx)
        _runs(opts, root, ctx, results)
    finally:
        if ctx.get("cluster") is not None:
            ctx["cluster"].stop()
        if ctx.get("pg") is not None:
            ctx["pg"].stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=None if opts.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
