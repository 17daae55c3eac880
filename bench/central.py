"""Central benchmark, all in one run on this machine: the broker (a 3-node RabbitMQ cluster, and/or a
site or province mosquitto), PostgreSQL 15 (durable commits: fsync on), listener processes started
with ``idstation central listen``.

1. the registry at scale: 50,000 devices, a watching registry; max and p99 lookup latency on the
   message thread while revocations and enrolments land, and the time until each is enforced;
2. per broker, raw consumption: the same N messages consumed and acknowledged by a bare client
   (RabbitMQ: a pika consumer of the quorum queue with the same prefetch, one ``multiple`` ack per
   200 as a listener's batch, and beside it one ack per message; mosquitto: a paho consumer of its
   persistent session with the listener's Receive Maximum), with the broker's and the consumer's
   CPU per message: the transport's ceiling;
3. per broker, end to end: broker -> verify -> decrypt -> PostgreSQL commit -> ack -> receipt
   (signed and published, as in production: ``--no-receipts`` leaves them off), with 1 and 2
   listener processes, and the SQLite store with 1 (ratio to raw). ``--boxes`` sets how many
   streams the events come from: with 200 boxes a batch holds ~2 events per stream and a stream
   gets a receipt every few events; with 2,000 nearly every event gets its own receipt. The queue is full
   before the listeners start (mosquitto: the listeners' persistent sessions subscribed, went
   offline, the boxes filled them); the rate runs from the first commit to the last. Each run
   reports the CPU seconds of the broker, PostgreSQL and the listeners (per thread) over that
   window, the CPU per event of each, the broker's CPU per event while the queue was filled,
   PostgreSQL's WAL bytes per event, from the listeners' own metrics their transactions and
   where their pipelines waited (bench/central_pipeline.py), and how much CPU the hypervisor gave
   other guests meanwhile (``cores_stolen``: on a shared host, the noise behind a slow run);
4. a burst (default 100,000 events) drained by 2 listeners; their peak memory (VmHWM) with the
   prefetch (RabbitMQ) or the intake queue (mosquitto) bounding what each holds;
5. ``--profile``: one more 1-listener PostgreSQL drain per broker with py-spy on the listener
   (``--native --threads``); the shares per thread and the top frames by self time go into the
   output (``profile``); needs ``pip install py-spy``.

The same frames (genuinely signed; every 5th an HPKE-sealed identity) are used for every run,
each time into a fresh database, so every run does the same work. The machine's load average
is recorded at the start and the end (a shared machine: compare ratios, not absolute figures).

usage: python bench/central.py [--broker mosquitto|rabbitmq|both] [--events 20000] [--burst 100000]
                               [--boxes 200] [--prefetch 1000] [--max-batch N]
                               [--registry-devices 50000] [--skip-registry] [--skip-burst] [--no-receipts]
                               [--receipt-max-interval S]
                               [--profile] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.central_brokers import MosquittoBench, RabbitBench
from bench.central_pipeline import PipelineScrape, Progress, free_port, peak_rss_kb, stolen_s
from bench.central_profile import CpuMeter, Spy, named_thread_split, thread_cpu, thread_names, tree_cpu_s
from bench.central_registry import registry_latency
from tests.fixtures.postgres import PostgresServer
from tests.integration.central.boxes import build_frames, interleave
from tests.integration.central.fleet import write_devices

RUNS = (  # name, listener processes, store
    ("postgresql_1_listener", 1, "postgresql"),
    ("postgresql_2_listeners", 2, "postgresql"),
    ("sqlite_1_listener", 1, "sqlite"),
)


def listeners(run: str, n: int, store: str, ctx: dict[str, Any]) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """``n`` ``central listen`` processes on ``ctx["broker"]``, each with its log file."""
    exe = shutil.which("idstation") or "idstation"
    started = []
    for i in range(n):
        argv = [exe, "central", "listen", "--store", store, *ctx["broker"].listener_args(run, i, n)]
        argv += ["--registry", str(ctx["registry"]), "--key", str(ctx["key"]), "--retention-days", "0"]
        if ctx["max_batch"]:
            argv += ["--max-batch", str(ctx["max_batch"])]
        if ctx.get("receipt_max_interval") is not None:
            argv += ["--receipt-max-interval", str(ctx["receipt_max_interval"])]
        port = free_port()
        argv += ["--metrics", f"127.0.0.1:{port}"]
        log = ctx["logs"] / f"{ctx['broker'].name}-{run}-{i}.log"
        out = open(log, "ab")  # noqa: SIM115 - the child's
        started.append((subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, start_new_session=True), log))
        ctx.setdefault("metrics_ports", {})[started[-1][0].pid] = port
        out.close()
    return started


class Window:
    """CPU of the broker, PostgreSQL and the listeners (per thread) from the first commit to the last."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], ctx: dict[str, Any], spy: Path | None) -> None:
        self.procs = procs
        pg, broker = ctx["pg"], ctx["broker"]
        pids = [p.pid for p in procs]
        self.meter = CpuMeter(
            {
                "broker": broker.cpu,
                "postgresql": lambda: tree_cpu_s(pg.proc.pid),
                "listeners": lambda: sum(tree_cpu_s(pid) for pid in pids),
            }
        )
        self.spy_path, self.spy = spy, None
        self.threads: list[dict[int, float]] = []

    def open(self) -> None:
        self.meter.start()
        self.threads = [thread_cpu(p.pid) for p in self.procs]
        if self.spy_path is not None:
            self.spy = Spy(self.procs[0].pid, self.spy_path)

    def close(self, events: int) -> dict[str, Any]:
        out = self.meter.stop()
        if self.spy is not None:  # before py-spy dump below: one tracer at a time
            out["profile"] = self.spy.stop()
        split: dict[str, float] = {}
        each = []  # per listener process: is the work shared out?
        for p, before in zip(self.procs, self.threads, strict=True):
            names = {p.pid: "MainThread", **thread_names(p.pid)}
            threads = named_thread_split(before, thread_cpu(p.pid), names)
            each.append(round(sum(threads.values()), 2))
            for name, cpu in threads.items():
                split[name] = round(split.get(name, 0.0) + cpu, 2)
        out["listener_threads_cpu_s"] = split
        out["listener_cpu_s"] = each
        parts = {k: v for k, v in out["cpu_s"].items() if k != "other"}  # other: the rest of the machine
        out["cpu_us_per_event"] = {k: round(v * 1e6 / max(events, 1)) for k, v in parts.items()}
        return out


def drain(run: str, n: int, store: str, count: int, ctx: dict[str, Any], *, profile: bool = False) -> dict[str, Any]:
    """Start ``n`` listeners on a full queue; events/s from the first commit to the last."""
    procs = [p for p, _log in listeners(run, n, store, ctx)]
    peak = [0] * n
    window = Window(procs, ctx, ctx["logs"] / f"{ctx['broker'].name}-{run}.pyspy" if profile else None)
    first: float | None = None
    first_count, wal0, stolen0 = 0, None, 0.0
    progress = Progress(store)
    pipeline = PipelineScrape([ctx["metrics_ports"][p.pid] for p in procs])
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            have = progress.approx()
            now = time.perf_counter()
            if have and first is None:
                first, first_count, wal0 = now, have, progress.wal()
                window.open()
                pipeline.open()
                stolen0 = stolen_s()
            for i, p in enumerate(procs):
                peak[i] = max(peak[i], peak_rss_kb(p.pid))
            if have >= count and progress.exact() >= count:
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a listener exited; see {ctx['logs']}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"the drain did not finish in 900 s; see {ctx['logs']}")
        done = time.perf_counter()
        if first is None:
            raise RuntimeError(f"nothing was stored; see {ctx['logs']}")
        usage = window.close(count - first_count)
        usage["pipeline"] = pipeline.close()
        usage["cores_stolen"] = round((stolen_s() - stolen0) / max(done - first, 1e-6), 2)  # by the host
        wal1 = progress.wal()
        if wal0 is not None and wal1 is not None:
            usage["wal_bytes_per_event"] = round((wal1 - wal0) / max(count - first_count, 1))
    finally:
        progress.close()
        _stop(procs)
    rate = (count - first_count) / max(done - first, 1e-6)
    result = {"listeners": n, "events": count, "events_s": round(rate), "peak_rss_mb": [round(k / 1024) for k in peak]}
    return {**result, **usage, "cpu_ceiling_events_s": cpu_ceiling(usage["cpu_us_per_event"], n)}


def cpu_ceiling(us: dict[str, int], listeners: int) -> int:
    """An estimate, not a measurement: the rate this machine's cores would give if the centre had them
    all, from the CPU per event measured — every part's CPU shared over the cores, and each listener
    process at most one core (its threads share the GIL). Conservative where C code releases the GIL
    for long: a SQLite listener writes outside it and was measured at 1.0-1.3 cores."""
    cores = os.cpu_count() or 1
    total = max(sum(us.values()), 1)
    return round(min(cores * 1e6 / total, listeners * 1e6 / max(us.get("listeners", 1), 1)))


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def _migrate(url: str) -> str:
    exe = shutil.which("idstation") or "idstation"
    subprocess.run([exe, "central", "migrate", "--store", url], check=True, capture_output=True)
    return url


def fresh_store(kind: str, ctx: dict[str, Any]) -> str:
    if kind == "sqlite":
        return _migrate(f"sqlite:///{ctx['root']}/central-{time.time_ns()}.db")
    return _migrate(ctx["pg"].create_database())


def run_once(name: str, n: int, kind: str, frames: list[Any], ctx: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A fresh store, the listeners' sessions (mosquitto), the queue filled, then drained."""
    broker, url = ctx["broker"], fresh_store(kind, ctx)
    broker.prepare(name, n, lambda: listeners(name, n, url, ctx))
    cpu0 = broker.cpu()
    fill = broker.fill(frames)
    fill_cpu = broker.cpu() - cpu0
    try:
        result = drain(name, n, url, len(frames), ctx, **kw)
    finally:
        broker.forget(name, n)
    result["queue_fill_events_s"] = round(fill)
    result["broker_fill_cpu_us_per_event"] = round(fill_cpu * 1e6 / len(frames))  # MQTT in, queued
    return result


def broker_runs(opts: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """Everything measured on one broker (the broker started and stopped here)."""
    devices, central = ctx["devices"], ctx["central"]
    frames = interleave(build_frames(devices[: opts.boxes], max(1, opts.events // opts.boxes), central.public_key()))
    out: dict[str, Any] = {"load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    out["raw_consume"] = ctx["broker"].raw(frames)
    raw = out["raw_consume_events_s"] = out["raw_consume"]["events_s"]
    print(json.dumps({ctx["broker"].name: {"raw_consume": out["raw_consume"]}}), flush=True)
    for name, n, kind in RUNS:
        out[name] = run_once(name, n, kind, frames, ctx)
        out[name]["ratio_to_raw"] = round(out[name]["events_s"] / raw, 3)
        print(json.dumps({ctx["broker"].name: {name: _brief(out[name])}}), flush=True)
    out["mqtt_publish_events_s"] = out["postgresql_1_listener"]["queue_fill_events_s"]
    if opts.profile:
        out["profile_postgresql_1_listener"] = run_once("profile", 1, "postgresql", frames, ctx, profile=True)
    if not opts.skip_burst:
        burst = interleave(build_frames(devices[: opts.boxes], max(1, opts.burst // opts.boxes), central.public_key()))
        out["burst_2_listeners"] = run_once("burst", 2, "postgresql", burst, ctx)
        out["burst_queue_fill_events_s"] = out["burst_2_listeners"]["queue_fill_events_s"]
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def summary(results: dict[str, Any]) -> str:
    """A few lines for a person (stderr): per broker, raw and each run with its ratio, the CPU per
    event of each part and how many cores the rest of the machine took meanwhile."""
    lines = [f"load average {results['load_avg_start'][:1]} -> {results['load_avg_end'][:1]}"]
    for broker in ("rabbitmq", "mosquitto"):
        out = results.get(broker)
        if not out:
            continue
        lines.append(f"{broker}: raw {out['raw_consume_events_s']} events/s")
        for name in (*(r[0] for r in RUNS), "burst_2_listeners"):
            run = out.get(name)
            if run:
                cpu = " ".join(f"{k} {v}" for k, v in run["cpu_us_per_event"].items())
                other = run.get("cores_busy", {}).get("other", 0.0)
                other = f"{other}; stolen by the host {run.get('cores_stolen', '-')}"
                ratio = run.get("ratio_to_raw", "-")
                rate = f"{run['events_s']} events/s (x{ratio} raw; CPU ceiling {run.get('cpu_ceiling_events_s')})"
                lines.append(f"  {name}: {rate}; us/event {cpu}; other cores {other}")
    return "\n".join(lines)


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("listeners", "events_s", "ratio_to_raw", "cores_busy", "cpu_us_per_event", "listener_threads_cpu_s")
    keys += ("listener_cpu_s", "peak_rss_mb")
    keys += ("broker_fill_cpu_us_per_event", "pipeline", "cores_stolen")
    return {k: run[k] for k in keys if k in run}


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=("mosquitto", "rabbitmq", "both"), default="both")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--prefetch", type=int, default=1000)
    parser.add_argument("--max-batch", type=int, default=None, help="passed to central listen when it has it")
    parser.add_argument("--registry-devices", type=int, default=50_000)
    parser.add_argument("--skip-registry", action="store_true", help="no latency test (the devices are still made)")
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument("--no-receipts", dest="receipts", action="store_false", help="listeners without a receipt key")
    parser.add_argument("--receipt-max-interval", type=float, default=None, help="passed to central listen")
    parser.add_argument("--profile", action="store_true", help="one more drain per broker with py-spy")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, py-spy stacks)")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def _central_key(path: Path, *, receipts: bool = True) -> X25519PrivateKey:
    """The centre's key, and receipt_key.pem beside it (as init-ca leaves them): receipts on, as in
    production — each listener signs and publishes at most one per stream per receipt interval
    (``--no-receipts``: no receipt key, the listeners run with receipts off, as runs before 460b3f3)."""
    central = X25519PrivateKey.generate()
    pem = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(central.private_bytes(*pem))
    if receipts:
        (path.parent / "receipt_key.pem").write_bytes(Ed25519PrivateKey.generate().private_bytes(*pem))
    return central


def _postgres(root: Path) -> PostgresServer:
    pg_root = root / "pg"
    pg_root.mkdir()
    shutil.chown(pg_root, "postgres", "postgres")
    pg = PostgresServer(pg_root, durable=True)
    pg.start()
    return pg


def _has_max_batch() -> bool:
    exe = shutil.which("idstation") or "idstation"
    done = subprocess.run([exe, "central", "listen", "--help"], capture_output=True, text=True, check=False)
    return "--max-batch" in done.stdout


def _brokers(opts: argparse.Namespace, root: Path) -> list[Any]:
    names = ("rabbitmq", "mosquitto") if opts.broker == "both" else (opts.broker,)
    return [
        (lambda: RabbitBench(root, opts.prefetch))
        if name == "rabbitmq"
        else (lambda: MosquittoBench(root, max(opts.events, opts.burst) + 1000))
        for name in names
    ]


def main(argv: list[str] | None = None) -> int:
    opts = _options(argv)
    # the registry's own log lines (one per change) go to stderr, warnings and up: stdout is the figures
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    root = Path(tempfile.mkdtemp(prefix="idstation-bench-central-", dir="/tmp"))
    os.chmod(root, 0o755)
    load = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, Any] = {"machine_cores": os.cpu_count(), "load_avg_start": load}
    ctx: dict[str, Any] = {"root": root, "logs": root / "logs", "registry": root / "registry"}
    ctx["max_batch"] = opts.max_batch if opts.max_batch and _has_max_batch() else None
    ctx["receipt_max_interval"] = opts.receipt_max_interval
    ctx["logs"].mkdir()
    try:
        ctx["devices"] = write_devices(ctx["registry"], opts.registry_devices)
        if not opts.skip_registry:
            results["registry"] = registry_latency(ctx["registry"], ctx["devices"], spare=opts.boxes)
            print(json.dumps({"registry": results["registry"]}), flush=True)
        ctx["key"] = root / "central_key.pem"
        ctx["central"] = _central_key(ctx["key"], receipts=opts.receipts)
        ctx["pg"] = _postgres(root)
        for make in _brokers(opts, root):
            ctx["broker"] = make()
            try:
                out = results[ctx["broker"].name] = broker_runs(opts, ctx)
            finally:
                ctx["broker"].stop()
            if ctx["broker"].name == "rabbitmq":  # the shape of earlier runs: RabbitMQ's figures on top
                results.update({k: v for k, v in out.items() if not k.startswith("load_avg")})
    finally:
        if ctx.get("pg") is not None:
            ctx["pg"].stop()
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)
    results["run_dir"] = str(root) if opts.keep else None
    results["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=None if opts.json else 2))
    print(summary(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
