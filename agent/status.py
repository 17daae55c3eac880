"""The box's status: the retained MQTT status message and the local ``status.json``.

The daemon builds one document (``status_document``) every ``status.interval_s`` and on every
placement outcome; the publisher sends it retained (online; the broker's last will says offline
when the box vanishes) and ``write_status_file`` keeps a copy in the state directory, which
``idstation status`` reads on the box without touching the broker. No personal data: counts,
states, times and the software version only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idstation.agent.errors import ConfigError

if TYPE_CHECKING:
    from idstation.agent.app import Agent

STATUS_FILE = "status.json"
STARTED = time.time()


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("idstation")
    except PackageNotFoundError:
        return "0+unknown"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def status_document(agent: Agent) -> dict[str, Any]:
    """The status of a running agent (the ``status`` event's info and ``status.json``)."""
    health = agent.health
    try:
        outbox = agent.sink.health()
    except Exception as exc:  # status must never take the daemon down
        outbox = {"error": type(exc).__name__}
    return {
        "state": "online",
        "version": software_version(),
        "pid": os.getpid(),
        "started_at": _iso(STARTED),
        "updated_at": _iso(time.time()),
        "reader": health.reader,
        "camera": health.camera,
        "indicator": _last_signal(agent.indicator),
        "placements": health.placements,
        "last_read_at": _iso(health.last_read_at),
        "last_outcome": health.last_outcome,
        "outcomes": dict(health.outcomes),
        "outbox": outbox,
    }


def _last_signal(indicator: object) -> str | None:
    last = getattr(indicator, "last", None)
    if isinstance(last, tuple):
        return str(last[0])
    signal = getattr(last, "signal", None)
    return str(signal) if signal is not None else None


def write_status_file(state_dir: Path, doc: dict[str, Any]) -> None:
    """Atomically replace ``<state_dir>/status.json``."""
    path = state_dir / STATUS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def mark_stopped(state_dir: Path) -> None:
    """On a clean stop the local status says so (the broker's status goes offline by the publisher)."""
    path = state_dir / STATUS_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    doc.update(state="stopped", updated_at=_iso(time.time()))
    write_status_file(state_dir, doc)


def read_status(state_dir: Path, interval_s: float, now: float | None = None) -> dict[str, Any]:
    """The last status the daemon wrote, with ``running`` judged by its age (3 intervals)."""
    path = state_dir / STATUS_FILE
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"state": "not_running", "running": False, "detail": f"no {STATUS_FILE} in {state_dir}"}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {type(exc).__name__}") from None
    age = (now or time.time()) - path.stat().st_mtime
    doc["age_s"] = round(age, 1)
    doc["running"] = doc.get("state") == "online" and age <= 3 * interval_s + 5
    if doc.get("state") == "online" and not doc["running"]:
        doc["state"] = "stale"
    return doc


def render_status(doc: dict[str, Any]) -> str:
    """The human form of ``idstation status``."""
    outbox = doc.get("outbox") or {}
    lines = [
        f"state:        {doc.get('state')}" + (f" ({doc['detail']})" if doc.get("detail") else ""),
        f"version:      {doc.get('version', '?')}",
        f"reader:       {doc.get('reader', '?')}",
        f"camera:       {doc.get('camera', '?')}",
        f"broker:       {outbox.get('connected', '?')}",
        f"outbox depth: {outbox.get('depth', '?')}",
        f"receipts:     {outbox.get('awaiting_receipt', 0)} event(s) await the centre's receipt"
        + (f", oldest {outbox['oldest_awaiting_s']} s" if outbox.get("oldest_awaiting_s") is not None else ""),
        f"placements:   {doc.get('placements', 0)}",
        f"last read:    {doc.get('last_read_at') or '-'} ({doc.get('last_outcome') or '-'})",
        f"updated:      {doc.get('updated_at', '-')} ({doc.get('age_s', '?')} s ago)",
    ]
    return "\n".join(lines)
