"""What a batch writes beside the event rows, the same on both backends: the device rows
(:func:`device_rows`, :data:`UPSERT_DEVICE`), a recorded telemetry event's outcome
(:func:`telemetry_outcome`: its ``seq_floor`` closes gaps) and a duplicate's (:func:`duplicate`:
delivered again when the held copy never was).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from idstation.mqtt.central.store.base import (
    RECEIPT_OWED,
    Incoming,
    Outcome,
    StreamState,
    Verdict,
    abandon_below,
    seq_floor,
)

__all__ = ["NEWER", "UPSERT_DEVICE", "device_rows", "duplicate", "telemetry_outcome"]

log = structlog.get_logger(__name__)

UPSERT_DEVICE = """
INSERT INTO device_state (device_id, site, counter, last_seen, state, info, state_at, last_event_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device_id) DO UPDATE SET site = excluded.site, counter = excluded.counter,
  last_seen = {greatest}(device_state.last_seen, excluded.last_seen),
  last_event_at = CASE WHEN excluded.last_event_at IS NULL THEN device_state.last_event_at
    ELSE {greatest}(COALESCE(device_state.last_event_at, 0), excluded.last_event_at) END,
  state = CASE WHEN {newer} THEN COALESCE(excluded.state, device_state.state) ELSE device_state.state END,
  info = CASE WHEN {newer} THEN excluded.info ELSE device_state.info END,
  state_at = CASE WHEN {newer} THEN excluded.state_at ELSE device_state.state_at END
"""
NEWER = (
    "excluded.state_at IS NOT NULL AND (device_state.state_at IS NULL OR excluded.state_at >= device_state.state_at)"
)


def device_rows(
    batch: Sequence[Incoming], outcomes: Sequence[Outcome], json_in: Callable[[Any], Any]
) -> list[tuple[Any, ...]]:
    """One device_state row per device of the batch: last seen, the latest status (state, info) or
    heartbeat (info), the latest data event, as ``(device_id, site, counter, last_seen, state,
    info, state_at, last_event_at)``."""
    rows: dict[str, list[Any]] = {}
    for e, outcome in zip(batch, outcomes, strict=True):
        if not outcome.accepted:
            continue
        row = rows.setdefault(e.device_id, [e.device_id, e.site, e.counter, e.received_at, None, None, None, None])
        row[3] = max(row[3], e.received_at)
        if e.data:
            row[7] = max(row[7] or 0.0, e.received_at)
        # by arrival, not by the box's created_at: the last will is built when the box connects, so
        # its created_at is older than every later status; it must still win when it arrives (H6)
        if e.kind in ("status", "heartbeat"):
            row[4] = e.header.get("state") if e.kind == "status" else row[4]
            row[5], row[6] = json_in(e.header.get("info", {})), _arrival(e.received_at)
    return [tuple(r) for r in rows.values()]


def _arrival(ts: float) -> str:
    """``received_at`` as sortable ISO 8601 text (the ``state_at`` column), microseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1_000_000) % 1_000_000:06d}Z"


def telemetry_outcome(e: Incoming, state: StreamState | None, cursor: int) -> Outcome:
    """A recorded status or heartbeat: its ``seq_floor`` closes the stream's gaps below it (logged);
    when it closed any, the stream's receipt is owed (:data:`~.base.RECEIPT_OWED`)."""
    floor = seq_floor(e.header)
    if floor is None or state is None:
        return Outcome(Verdict.NEW, cursor=cursor)
    abandoned = abandon_below(state, floor)
    for lo, hi in abandoned:
        log.warning("central_seq_gap_abandoned", device_id=e.device_id, missing_from=lo, missing_to=hi)
    return Outcome(Verdict.NEW, cursor=cursor, receipt=RECEIPT_OWED if abandoned else None)


def duplicate(held: Sequence[Any] | None, frame: bytes) -> Outcome:
    """A duplicate; to be delivered again when the held event (same frame) was never delivered."""
    if held is not None and not held[1] and bytes(held[2]) == frame:
        return Outcome(Verdict.DUPLICATE, cursor=int(held[0]), redeliver=True)
    return Outcome(Verdict.DUPLICATE)
