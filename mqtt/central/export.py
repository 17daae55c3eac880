"""``idstation central export``: accepted events from the store, in commit order, with a cursor.

Each line is the JSON line ``central listen --json`` prints for the event (see
:func:`~idstation.mqtt.central.listener.event_to_json_line`) plus ``"cursor"``: the store's
cursor, strictly increasing in commit order. A consumer that keeps the last cursor it handled
and restarts with ``--after CURSOR`` misses nothing and sees nothing twice, whatever happened to
the listeners in between (they acknowledge the broker only after the commit, so a crash before
delivery leaves the event in the store for the export). The frame is opened again with the
central key (the personal part is stored sealed); without a key an identity line has
``citizen: null`` and ``"sealed": true``. ``sequence`` (gap/filled) is not stored, so export
lines do not carry it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.listener import AcceptedEvent, event_to_json_line
from idstation.mqtt.central.store import Outcome, Store, StoredEvent, Verdict
from idstation.mqtt.errors import SealError
from idstation.mqtt.seal import decode_frame, open_private

__all__ = ["export_lines", "stored_to_accepted"]


def stored_to_accepted(event: StoredEvent, central_key: X25519PrivateKey | None) -> AcceptedEvent:
    """The stored event as the listener delivered it (identity opened again when a key is given)."""
    private = None
    if event.kind == "identity" and central_key is not None:
        try:
            frame = decode_frame(event.frame)
            private = open_private(frame.sealed, central_key, event.device_id, event.event_id)
        except SealError:
            private = None
    outcome = Outcome(Verdict.NEW, cursor=event.cursor)
    topic = f"idstation/v1/{event.site}/{event.counter}/{event.kind}"
    return AcceptedEvent(event.header, topic, private, outcome, event.received_at)


def _line(event: StoredEvent, central_key: X25519PrivateKey | None, full: bool) -> str:
    accepted = stored_to_accepted(event, central_key)
    body: dict[str, Any] = {"cursor": event.cursor, **json.loads(event_to_json_line(accepted, full=full))}
    if event.kind == "identity" and accepted.private is None:
        body["sealed"] = True
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def export_lines(
    store: Store,
    after: int,
    *,
    central_key: X25519PrivateKey | None = None,
    full: bool = False,
    follow: bool = False,
    poll_s: float = 0.5,
    batch: int = 500,
    stop: threading.Event | None = None,
) -> Iterator[str]:
    """JSON lines of the events committed after cursor ``after``; with ``follow``, wait for more
    (polling every ``poll_s`` seconds) until ``stop`` is set."""
    stop = stop or threading.Event()
    cursor = after
    while not stop.is_set():
        events = store.events_after(cursor, batch)
        for event in events:
            yield _line(event, central_key, full)
            cursor = event.cursor
        if len(events) == batch:
            continue
        if not follow:
            return
        stop.wait(poll_s)
