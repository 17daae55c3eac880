"""The audit trail as ``central audit`` prints it: who was shown which event, where and when.

Entries hold a client name, an event id, an endpoint path and a time: no personal data.
"""

from __future__ import annotations

from typing import Any

from idstation.mqtt.central.service.errors import ServiceError
from idstation.mqtt.central.service.views import iso, to_epoch

__all__ = ["audit_entries", "parse_since"]


def parse_since(text: str | None) -> float:
    """``--since``: ISO 8601 (``Z`` or an offset; naive means UTC) or Unix seconds; None: everything."""
    if text is None or not text.strip():
        return 0.0
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    value = to_epoch(text)
    if value is None:
        raise ServiceError("--since is an ISO 8601 time (2026-01-31T08:00:00Z) or Unix seconds")
    return value


def audit_entries(store_url: str, since: float) -> list[dict[str, Any]]:
    """The entries at or after ``since``, oldest first: ``{"time", "client", "event_id", "endpoint"}``
    (``at``: the same time, the store's name for it)."""
    from idstation.mqtt.central.store import open_store

    store = open_store(store_url)
    try:
        rows = store.audit_since(since)
    finally:
        store.close()
    out = []
    for row in rows:
        at = iso(row["at"])
        out.append(
            {"time": at, "at": at, "client": row["client"], "event_id": row["event_id"], "endpoint": row["endpoint"]}
        )
    return out
