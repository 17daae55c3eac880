"""What bench/central.py watches during a drain: the store's count, the listeners' memory, and
where their pipelines waited, from their own ``/metrics``.

Each ``central listen`` of a bench run serves its metrics on a loopback port; the drain scrapes
them when its window opens (the first commit) and when it closes (the last), and reports the
difference summed over the listeners: transactions, events per transaction, commit time, receipts
published, and the seconds each pipeline thread waited, by what it waited for
(``idstation_pipeline_wait_seconds_total``: the check thread for deliveries — the broker — or
for the commit thread — the store —, the commit thread for checked batches)."""

from __future__ import annotations

import os
import socket
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["PipelineScrape", "Progress", "free_port", "peak_rss_kb", "stolen_s"]

_SCALARS = (
    "idstation_batch_events_sum",
    "idstation_batch_events_count",
    "idstation_store_commit_seconds_sum",
    "idstation_receipts_published_total",
)
_WAITS = "idstation_pipeline_wait_seconds_total{"


class Progress:
    """How many events the store holds, polled 20 times a second during a drain on one connection:
    ``max(cursor)`` (the primary key index's last entry; a ``count(*)`` would scan every row each
    time, on the CPU being measured), then an exact ``count(*)`` to confirm the end (a cursor can
    skip values, e.g. a rolled-back batch)."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite:///")
        if self.sqlite:
            self.db: Any = sqlite3.connect(url.removeprefix("sqlite://"), isolation_level=None)
        else:
            self.db = psycopg.connect(url, autocommit=True)

    def _one(self, sql: str) -> int:
        return int(self.db.execute(sql).fetchone()[0] or 0)

    def approx(self) -> int:
        return self._one("SELECT max(cursor) FROM events")

    def exact(self) -> int:
        return self._one("SELECT count(*) FROM events")

    def wal(self) -> int | None:
        """PostgreSQL's WAL position in bytes (None for SQLite)."""
        return None if self.sqlite else self._one("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")

    def close(self) -> None:
        self.db.close()


def peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def stolen_s() -> float:
    """CPU seconds the hypervisor gave other guests while this VM's processes were ready to run
    (``steal`` in /proc/stat, all cores): a shared host's noise, reported beside every drain."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """The figures above from one listener (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    figures: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in _SCALARS:
            figures[name] = float(value)
        elif name.startswith(_WAITS):
            labels = dict(part.split("=", 1) for part in name[len(_WAITS) : -1].split(","))
            figures[f"{labels['thread'].strip(chr(34))}/{labels['waiting_for'].strip(chr(34))}"] = float(value)
    return figures


class PipelineScrape:
    """Scrape ``ports`` at :meth:`open` and :meth:`close`; :meth:`close` returns the difference."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.before: list[dict[str, float]] = []

    def open(self) -> None:
        self.before = [scrape(port) for port in self.ports]

    def close(self) -> dict[str, Any]:
        total: dict[str, float] = {}
        for port, before in zip(self.ports, self.before, strict=True):
            for name, value in scrape(port).items():
                total[name] = total.get(name, 0.0) + value - before.get(name, 0.0)
        commits = total.pop("idstation_batch_events_count", 0.0)
        events = total.pop("idstation_batch_events_sum", 0.0)
        commit_s = total.pop("idstation_store_commit_seconds_sum", 0.0)
        receipts = total.pop("idstation_receipts_published_total", 0.0)
        return {
            "commits": round(commits),
            "events_per_commit": round(events / commits, 1) if commits else None,
            "commit_ms_mean": round(commit_s / commits * 1000, 2) if commits else None,
            "receipts": round(receipts),
            "wait_s": {name: round(value, 2) for name, value in sorted(total.items())},
        }
