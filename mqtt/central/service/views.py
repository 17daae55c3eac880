"""What the service shows: a stored event as its JSON line, and a device as its fleet object.

An event's JSON line is exactly the object of ``idstation central listen --json``
(:func:`~idstation.mqtt.central.listener.event_to_json_line`), decrypted here with the central
key from the frame the store kept; with ``face=True`` an identity adds ``face`` (``{"mime",
"base64"}`` or null) for the clerk's screen (never the raw data groups or EF.SOD). Fleet objects hold no personal data:
names of places, device ids, states, times and counts only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.listener import AcceptedEvent, event_to_json_line
from idstation.mqtt.central.service.errors import ServiceError
from idstation.mqtt.errors import SealError
from idstation.mqtt.seal import decode_frame, open_private
from idstation.mqtt.topics import topic_for

__all__ = ["event_object", "fleet_object", "iso", "to_epoch"]

STREAM_KINDS = ("identity", "read_failed")


def to_epoch(value: Any) -> float | None:
    """A store time (epoch seconds, datetime or ISO 8601 text) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def iso(value: Any) -> str | None:
    ts = to_epoch(value)
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_object(stored: Any, central_key: X25519PrivateKey, *, face: bool = False) -> dict[str, Any]:
    """The JSON line's object of a stored event (identity decrypted; ``face``: plus the face photo)."""
    header = dict(stored.header)
    private = None
    if stored.kind == "identity":
        try:
            frame = decode_frame(bytes(stored.frame))
            private = open_private(frame.sealed, central_key, header["device_id"], header["event_id"])
        except SealError:  # a stored frame that no longer opens: the key was changed, not the event
            raise ServiceError("a stored identity event does not decrypt with this central key") from None
    topic = topic_for(stored.site, stored.counter, stored.kind)
    event = AcceptedEvent(header, topic, private, None, to_epoch(stored.received_at) or 0.0)
    obj: dict[str, Any] = json.loads(event_to_json_line(event))
    if face and stored.kind == "identity":
        obj["face"] = (private or {}).get("face")
    return obj


def _number(info: Mapping[str, Any], *paths: tuple[str, ...]) -> int | float | None:
    """The first numeric value found along ``paths`` in a status/heartbeat ``info``."""
    for path in paths:
        node: Any = info
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, int | float) and not isinstance(node, bool):
            return node
    return None


def fleet_object(
    record: Any, state: Mapping[str, Any] | None, failures: Mapping[str, int], hourly: list[int]
) -> dict[str, Any]:
    """One device of ``GET /v1/fleet``: registry record + the store's device state + counts."""
    state = state or {}
    info = state.get("info") or {}
    if not isinstance(info, Mapping):
        info = {}
    reported = str(state.get("state") or "offline")
    return {
        "device_id": record.device_id,
        "site": record.site,
        "counter": record.counter,
        "state": reported if reported in ("online", "offline", "alarm") else "alarm",
        "last_seen": iso(state.get("last_seen")),
        "outbox": _number(info, ("outbox", "depth"), ("outbox", "total"), ("outbox",), ("outbox_depth",)),
        "awaiting_receipt": _number(
            info,
            ("outbox", "awaiting_receipt"),
            ("outbox", "unreceipted"),
            ("awaiting_receipt",),
            ("unreceipted",),
        ),
        "oldest_unreceipted_s": _number(
            info,
            ("outbox", "oldest_awaiting_s"),
            ("oldest_awaiting_s",),
            ("outbox", "oldest_unreceipted_s"),
        ),
        "last_event_at": iso(state.get("last_event_at")),
        "failures": {str(k): int(v) for k, v in sorted(failures.items())},
        "events_per_hour": list(hourly),
    }
