"""Store.record() on its own: events/s and CPU per event, client and server, by batch size.

The events are realistic: genuinely built frames (EventBuilder: signed, every 5th an HPKE-sealed
identity, the others read_failed) of many devices, interleaved so a batch holds events of many
streams, as a listener's batch does; each run records them all into a fresh database.

Each batch is then marked delivered (``mark_delivered``, as a listener does after printing its
events; ``--no-mark`` leaves it out). Per run: wall time per event, this process's CPU per event
(``time.process_time``: psycopg's encoding and the store's Python), the PostgreSQL server's CPU
per event (every process of the throw-away cluster, from /proc, exited children included) and
events/s. PostgreSQL runs with durable commits (fsync on), SQLite with ``synchronous=FULL``.

``--baseline REV`` also runs the store as it was at git revision REV (its ``store`` package
loaded from git into this process, under another name), alternating with the current one run
by run, and prints the ratio current/baseline per batch size: both see the same machine load.

usage: python bench/store_record.py [--batches 1,50,200,500] [--events 20000] [--devices 400]
                                    [--backends postgresql,sqlite] [--baseline REV] [--rounds 2]
                                    [--no-mark] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import itertools
import json
import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.store import Incoming, open_store, sqlite_url
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer, decode_frame

ROOT = Path(__file__).resolve().parents[1]
PRIVATE = {
    "source": "chip",
    "citizen": {"id_number": "079203004512", "full_name": "Trần Thị Hoàng Yến", "date_of_birth": "12/03/2003"},
    "verification": {"passive_auth": "valid"},
}
STORE_PKG = "idstation.mqtt.central.store"


def build_events(devices: int, total: int, seed: int = 13) -> list[Incoming]:
    """``total`` data events of ``devices`` boxes (seq 1..n each), interleaved at random."""
    central = X25519PrivateKey.generate().public_key()
    per_device = max(1, total // devices)
    streams = []
    for i in range(devices):
        signer = Signer(Ed25519PrivateKey.generate())
        site, counter = f"site-{i // 4:05d}", f"c{i % 4}"
        builder = EventBuilder(f"box-{i:06d}", site, counter, signer, central, clock_synced=lambda: True)
        events = []
        for seq in range(1, per_device + 1):
            if seq % 5 == 0:
                built = builder.build("identity", seq, private=PRIVATE)
            else:
                built = builder.build("read_failed", seq, reason="no_card", detail="timeout")
            header = decode_frame(built.frame).header
            events.append(
                Incoming(built.event_id, header["device_id"], header["key_id"], seq, built.kind, site, counter,
                         header["created_at"], time.time(), header, built.frame)
            )  # fmt: skip
        streams.append(events)
    return _interleave(streams, random.Random(seed))


def _interleave(streams: list[list[Incoming]], rng: random.Random) -> list[Incoming]:
    """Each stream in order, the streams mixed at random (a broker queue fed by many boxes)."""
    heads = [0] * len(streams)
    live = [i for i, s in enumerate(streams) if s]
    out = []
    while live:
        j = rng.randrange(len(live))
        i = live[j]
        out.append(streams[i][heads[i]])
        heads[i] += 1
        if heads[i] == len(streams[i]):
            live[j] = live[-1]
            live.pop()
    return out


# --- the PostgreSQL server's CPU -------------------------------------------------------------------


def _ticks(pid: int) -> tuple[int, int]:
    """(own utime+stime, exited children's cutime+cstime) of a process, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def server_cpu(postmaster: int) -> float:
    """CPU seconds used so far by the cluster: the postmaster, its live children and exited ones."""
    own, exited = _ticks(postmaster)
    total = own + exited
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                total += _ticks(int(entry.name))[0]
    return total / os.sysconf("SC_CLK_TCK")


def start_postgres() -> tuple[Any, Path]:
    """A throw-away cluster with durable commits (tests/fixtures/postgres.py)."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.postgres import PostgresServer

    root = Path(tempfile.mkdtemp(prefix="idstation-pg-bench-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    server = PostgresServer(root, durable=True)
    server.start()
    return server, root


def postmaster_pid(server: Any) -> int:
    return int((server.data / "postmaster.pid").read_text().split()[0])


# --- the store under test: current, or as at a git revision ---------------------------------------


def load_store_package(rev: str) -> types.ModuleType:
    """The ``store`` package at git revision ``rev``, importable as ``store_<rev>`` (its own base,
    engine, backends and migrations), beside the current one."""
    name = "store_" + "".join(c if c.isalnum() else "_" for c in rev)
    folder = Path(tempfile.mkdtemp(prefix="idstation-store-rev-")) / name
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", rev, "mqtt/central/store/"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for path in listing:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, check=True).stdout
        target = folder / Path(path).relative_to("mqtt/central/store")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".py":
            text = text.replace(STORE_PKG.encode() + b".", name.encode() + b".")
            quoted = b'resources.files("%s")'
            text = text.replace(quoted % STORE_PKG.encode(), quoted % name.encode())
        target.write_bytes(text)
    sys.path.insert(0, str(folder.parent))
    init = folder / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _convert(events: Sequence[Incoming], incoming_type: type) -> list[Any]:
    if incoming_type is Incoming:
        return list(events)
    names = [f.name for f in dataclasses.fields(incoming_type) if not f.kw_only]  # the revision's own fields
    return [incoming_type(*(getattr(e, name) for name in names)) for e in events]


# --- one run ------------------------------------------------------------------------------------


def run_once(
    opener: Callable[[str], Any],
    url: str,
    events: Sequence[Incoming],
    batch: int,
    *,
    cpu: Callable[[], float],
    mark: bool = True,
) -> dict[str, float]:
    """Record ``events`` in batches (then mark each batch delivered, as a listener does)."""
    store = opener(url)
    try:
        store.record(events[:1])  # connect and warm up outside the measurement
        rest = events[1:]
        wall0, client0, server0 = time.perf_counter(), time.process_time(), cpu()
        for i in range(0, len(rest), batch):
            outcomes = store.record(rest[i : i + batch])
            if mark:  # as the listener does once the batch's events are delivered
                store.mark_delivered([o.cursor for o in outcomes if o.cursor is not None])
        wall, client, server = time.perf_counter() - wall0, time.process_time() - client0, cpu() - server0
        n = len(rest)
    finally:
        store.close()
    return {
        "events": n,
        "events_per_s": n / wall,
        "wall_us": 1e6 * wall / n,
        "client_cpu_us": 1e6 * client / n,
        "server_cpu_us": 1e6 * server / n,
    }


@contextmanager
def backend_of(name: str, tmp: Path) -> Iterator[tuple[Callable[[str], str], Callable[[], float]]]:
    """``(new_url(label), server_cpu())`` of a backend: a fresh database per run."""
    if name == "sqlite":
        yield (lambda label: sqlite_url(tmp / f"{label}.sqlite")), (lambda: 0.0)  # SQLite runs in this process
        return
    server, root = start_postgres()
    pid = postmaster_pid(server)
    try:
        yield (lambda _label: server.create_database()), (lambda: server_cpu(pid))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _print(row: dict[str, Any]) -> None:
    print(
        f"{row['backend']:10s} batch {row['batch']:3d} {row['impl']:8s} {row['events_per_s']:8.0f} ev/s  wall "
        f"{row['wall_us']:6.1f} us  client cpu {row['client_cpu_us']:6.1f} us  server cpu "
        f"{row['server_cpu_us']:6.1f} us",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,50,200,500")
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--single-events", type=int, default=600, help="events for batch size 1 (a commit each)")
    ap.add_argument("--devices", type=int, default=400)
    ap.add_argument("--backends", default="postgresql,sqlite")
    ap.add_argument("--baseline", metavar="REV", help="also run the store as at this git revision")
    ap.add_argument("--rounds", type=int, default=2, help="runs per configuration (alternating with the baseline)")
    ap.add_argument("--no-mark", action="store_true", help="record only (no mark_delivered after each batch)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    events = build_events(args.devices, args.events)
    impls: dict[str, tuple[Callable[..., Any], type]] = {"current": (open_store, Incoming)}
    if args.baseline:
        old = load_store_package(args.baseline)
        impls["baseline"] = (old.open_store, old.Incoming)
    converted = {name: _convert(events, t) for name, (_o, t) in impls.items()}
    results: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="idstation-store-bench-"))
    try:
        for backend in args.backends.split(","):
            with backend_of(backend, tmp) as (new_url, cpu):
                for batch, rnd, name in itertools.product(
                    [int(b) for b in args.batches.split(",")], range(args.rounds), impls
                ):
                    n = args.single_events if batch == 1 else args.events
                    opener = functools.partial(impls[name][0], migrate=True)
                    url = new_url(f"{name}-{batch}-{rnd}")
                    row = run_once(opener, url, converted[name][:n], batch, cpu=cpu, mark=not args.no_mark)
                    row.update(backend=backend, batch=batch, impl=name, round=rnd)
                    results.append(row)
                    if not args.json:
                        _print(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = _summary(results)
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"load": load, "runs": results, "summary": summary}, indent=1))
    else:
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        for line in summary:
            print(line)
    return 0


def _summary(results: list[dict[str, Any]]) -> list[str]:
    """Best-of-rounds per configuration; with a baseline, the ratio current/baseline."""
    best: dict[tuple[str, int, str], dict[str, Any]] = {}
    for r in results:
        key = (r["backend"], r["batch"], r["impl"])
        if key not in best or r["events_per_s"] > best[key]["events_per_s"]:
            best[key] = r
    lines = []
    for (backend, batch, impl), r in sorted(best.items()):
        if impl != "current":
            continue
        line = (
            f"{backend} batch {batch}: {r['events_per_s']:.0f} ev/s, client {r['client_cpu_us']:.0f} us, "
            f"server {r['server_cpu_us']:.0f} us CPU/event"
        )
        base = best.get((backend, batch, "baseline"))
        if base:
            line += (
                f"; vs baseline: x{r['events_per_s'] / base['events_per_s']:.2f} events/s, client CPU "
                f"x{r['client_cpu_us'] / base['client_cpu_us']:.2f}, server CPU "
                f"x{r['server_cpu_us'] / max(base['server_cpu_us'], 1e-9):.2f}"
            )
        lines.append(line)
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
