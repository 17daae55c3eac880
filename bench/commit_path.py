"""The listener's commit thread on its own: CPU per event of ``Intake._commit`` (record one batch
in one store transaction, acknowledge, accepted/rejected results, receipts noted, each accepted
event written as the CLI's JSON line, the batch marked delivered), without a broker.

The bench mix of bench/central.py: 200 devices x 50 events (genuinely signed frames, 1 in 5 an
HPKE-sealed identity), interleaved, checked once beforehand (``CentralProcessor.check``: the
check thread's work is not measured), then committed in batches of ``--batch`` into a fresh
database per run: PostgreSQL (a throw-away cluster, durable commits, as the tests start it) and
SQLite (``synchronous=FULL``). CPU is this thread's (``time.thread_time``): the commit thread's
own, waits for the database excluded.

``--baseline REV`` (default HEAD): the intake, the receipts and the store package as at git revision REV are
loaded into this process under other names and run against the working tree's, in alternating
rounds (the order flips each round), so a noisy machine hits both alike; reported: the best round
of each, their ratio current/baseline, the median of the rounds' own ratios, and the machine's load.

Measured (2 cores, load 1.1, 15,800 events a run, 7 rounds) against ee8c4e2, the session's start:
PostgreSQL 55.0 -> 42.6 us/event (best rounds x0.77, median round x0.83), SQLite 67.9 -> 56.8
(x0.84, x0.85); PostgreSQL's own CPU per event unchanged (x1.04 median, noise). System calls of
the commit thread (each hands the GIL over; strace, PostgreSQL): ~96 -> ~77 a batch of 200.
``--contended`` (load 1.2, 7 rounds), PostgreSQL: 55.7 -> 48.6 us/event (x0.87, median round x0.90).

usage: python bench/commit_path.py [--devices 200] [--per-device 50] [--batch 200] [--rounds 5]
                                   [--backends postgresql,sqlite] [--baseline REV] [--contended]
                                   [--profile BACKEND]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import store_record
import structlog
from companion import companion
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central import intake as intake_module
from idstation.mqtt.central.listener import event_to_json_line
from idstation.mqtt.central.processor import CentralProcessor
from idstation.mqtt.central.receipts import ReceiptBatcher
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import Verdict, open_store
from idstation.mqtt.central.transport import Delivery
from idstation.mqtt.seal import Signer

from tests.integration.central.boxes import build_frames, interleave
from tests.integration.central.fleet import write_devices

ROOT = store_record.ROOT
Batch = tuple[list[Delivery], list[tuple[Delivery, Any]]]
CURRENT = (intake_module.Intake, open_store, ReceiptBatcher)  # the working tree's


class NullTransport:
    """The transport port's parts the commit uses: acknowledgements are counted."""

    def __init__(self) -> None:
        self.acked = 0

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.acked += len(deliveries)

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        raise RuntimeError("the store refused a batch")

    def pause(self) -> None: ...
    def resume(self) -> None: ...


def load_module(rev: str, path: str, name: str, store_pkg: types.ModuleType) -> types.ModuleType:
    """``path`` as at ``rev``, as module ``name``, importing the store package loaded from ``rev``."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, check=True, text=True)
    module = types.ModuleType(name)
    module.__file__ = f"<{rev}:{path}>"
    sys.modules[name] = module
    code = text.stdout.replace(store_record.STORE_PKG, store_pkg.__name__)
    exec(compile(code, module.__file__, "exec"), module.__dict__)
    return module


def load_baseline(rev: str) -> tuple[Any, Any, Any]:
    """``(Intake, open_store, ReceiptBatcher)`` as at ``rev``. The old package's modules look
    ``Verdict`` up at call time: they are given the current one, so the processor's checks
    (``is Verdict.X``) hold."""
    store_pkg = store_record.load_store_package(rev)
    for name, module in list(sys.modules.items()):
        if name.startswith(store_pkg.__name__) and hasattr(module, "Verdict"):
            module.Verdict = Verdict
    intake = load_module(rev, "mqtt/central/intake.py", store_pkg.__name__ + "_intake", store_pkg)
    receipts = load_module(rev, "mqtt/central/receipts.py", store_pkg.__name__ + "_receipts", store_pkg)
    return intake.Intake, store_pkg.open_store, receipts.ReceiptBatcher


def prepare(root: Path, devices: int, per_device: int, batch: int) -> tuple[Registry, X25519PrivateKey, list[Batch]]:
    """The bench mix, checked, cut into batches of ``(deliveries, items)`` as the check thread hands them."""
    sims = write_devices(root / "registry", devices)
    central = X25519PrivateKey.generate()
    frames = interleave(build_frames(sims, per_device, central.public_key()))
    registry = Registry(root / "registry")
    registry.refresh()
    checker = CentralProcessor(registry, central, store=None)  # type: ignore[arg-type]
    now = time.time()
    deliveries = [Delivery(f.topic, f.payload, now) for f in frames]
    items = [(d, checker.check(d.topic, d.payload, d.received_at)) for d in deliveries]
    batches = [(deliveries[i : i + batch], items[i : i + batch]) for i in range(0, len(items), batch)]
    return registry, central, batches


def cli_writer(sink: io.TextIOBase) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """``central listen --json``'s ``(on_event, on_delivered)`` (agent/cli/central.py): a batch's
    lines in one write, then a flush."""
    lines: list[str] = []

    def on_event(event: Any) -> None:
        lines.append(event_to_json_line(event, full=False))

    def on_delivered() -> None:
        if lines:
            text = "\n".join(lines) + "\n"
            lines.clear()
            sink.write(text)
        sink.flush()

    return on_event, on_delivered


def run_once(
    impl: tuple[Any, Any, Any],
    url: str,
    prepared: tuple[Registry, Any, list[Batch]],
    server_cpu: Callable[[], float],
    *,
    contended: bool = False,
) -> tuple[float, float]:
    """Microseconds of this thread's CPU per event over every batch but the first (the warm-up),
    and of the database server's (PostgreSQL's processes; 0 for SQLite, which runs in this thread)."""
    registry, central, batches = prepared
    intake_cls, opener, batcher = impl
    store = opener(url, migrate=True)
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        transport = NullTransport()
        on_event, on_delivered = cli_writer(sink)
        intake = intake_cls(
            CentralProcessor(registry, central, store),
            transport,
            on_event=on_event,
            receipts=batcher(Signer(Ed25519PrivateKey.generate()), store, interval=0.2),
            on_delivered=on_delivered,
        )
        intake._commit(*batches[0])  # connect, warm up
        gc.collect()  # each run starts with the same heap
        with companion(contended):
            start, server0 = time.thread_time(), server_cpu()
            for deliveries, items in batches[1:]:
                intake._commit(deliveries, items)
            cpu, server = time.thread_time() - start, server_cpu() - server0
        events = sum(len(d) for d, _ in batches[1:])
        assert transport.acked == events + len(batches[0][0]), transport.acked
        assert intake.processor.counts["accepted"] == events + len(batches[0][0]), intake.processor.counts
    finally:
        sink.close()
        store.close()
    return 1e6 * cpu / events, 1e6 * server / events


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--per-device", type=int, default=50)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backends", default="postgresql,sqlite")
    ap.add_argument("--baseline", default="HEAD", metavar="REV")
    ap.add_argument("--contended", action="store_true", help="beside a busy companion thread (see companion())")
    ap.add_argument("--profile", metavar="BACKEND", help="cProfile one current run instead (top 30 by own time)")
    args = ap.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    tmp = Path(tempfile.mkdtemp(prefix="idstation-commit-path-"))
    try:
        registry, central, batches = prepare(tmp, args.devices, args.per_device, args.batch)
        impls = {"baseline": load_baseline(args.baseline), "current": CURRENT}
        if args.profile:
            return _profile(args.profile, tmp, registry, central, batches)
        report = _rounds(args, tmp, impls, (registry, central, batches))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=1))
    return 0


def _rounds(args: Any, tmp: Path, impls: dict[str, Any], prepared: tuple[Registry, Any, list[Batch]]) -> Any:
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {}  # backend -> impl -> [(thread, server)] by round
    for backend in args.backends.split(","):
        with store_record.backend_of(backend, tmp) as (new_url, server_cpu):
            for rnd in range(args.rounds):
                order = list(impls) if rnd % 2 == 0 else list(reversed(impls))
                for name in order:
                    url = new_url(f"{name}-{rnd}")
                    us, server = run_once(impls[name], url, prepared, server_cpu, contended=args.contended)
                    runs.setdefault(backend, {}).setdefault(name, []).append((us, server))
                    print(
                        f"{backend:10s} round {rnd} {name:8s} commit thread {us:6.1f} us/event, server {server:6.1f}",
                        file=sys.stderr,
                        flush=True,
                    )
    return _report(args, prepared[2], runs)


def _report(args: Any, batches: list[Batch], runs: dict[str, dict[str, list[tuple[float, float]]]]) -> Any:
    """Best round of each, the ratio of the bests, and the median of the rounds' own ratios (each
    round runs both back to back: an outlier round moves it less)."""

    def best(backend: str, name: str, i: int) -> float:
        return min(r[i] for r in runs[backend][name])

    def paired(backend: str, i: int) -> float:
        pairs = zip(runs[backend]["current"], runs[backend]["baseline"], strict=True)
        return statistics.median(c[i] / b[i] for c, b in pairs if b[i])

    backends = list(runs)
    return {
        "events_per_run": sum(len(d) for d, _ in batches[1:]),
        "batch": args.batch,
        "baseline": args.baseline,
        "rounds": args.rounds,
        "contended": args.contended,
        "commit_thread_cpu_us_per_event": {b: {n: round(best(b, n, 0), 1) for n in runs[b]} for b in backends},
        "ratio_current_to_baseline": {b: round(best(b, "current", 0) / best(b, "baseline", 0), 3) for b in backends},
        "median_round_ratio": {b: round(paired(b, 0), 3) for b in backends},
        "server_cpu_us_per_event": {
            b: {n: round(best(b, n, 1), 1) for n in runs[b]} for b in backends if best(b, "current", 1)
        },
        "server_median_round_ratio": {b: round(paired(b, 1), 3) for b in backends if best(b, "current", 1)},
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def _profile(backend: str, tmp: Path, registry: Registry, central: Any, batches: list[Batch]) -> int:
    with store_record.backend_of(backend, tmp) as (new_url, _cpu):
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        run_once(CURRENT, new_url("profile"), (registry, central, batches), _cpu)
        profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
