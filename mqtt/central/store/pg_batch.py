"""PostgreSQL: one batch in a fixed number of statements (arrays through ``unnest``), not one per event.

A round trip to the server costs 0.1-0.5 ms (more on a busy host); per-event statements would
make a batch of 200 cost 200+ round trips. Here a batch costs about ten, whatever its size:

1. insert every event (``ON CONFLICT (event_id) DO NOTHING RETURNING cursor, event_id``), in batch
   order (``WITH ORDINALITY ... ORDER BY``), so cursors follow the batch;
2. create the batch's streams if new, lock them (``SELECT ... FOR UPDATE``) and read their gaps;
3. classify in memory (:func:`~.base.classify`, the same machine as the generic path);
4. delete the replays just inserted; write the changed streams and gap differences; upsert the
   device rows.

The caller holds the batch advisory lock (:data:`~.postgres.BATCH_LOCK`) and the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from idstation.mqtt.central.store.base import (
    Incoming,
    Outcome,
    StreamState,
    Verdict,
    abandon_below,
    classify,
    seq_floor,
)
from idstation.mqtt.central.store.engine import (
    _NEWER,
    _UPSERT_DEVICE,
    Exec,
    device_rows,
    duplicate,
    log_abandoned,
)

__all__ = ["record_batch"]

_INSERT = """
INSERT INTO events
    (event_id, device_id, key_id, seq, kind, site, counter, reason, created_at, received_at, header, frame)
SELECT e, d, k, s, kd, si, c, r, ca, ra, h::jsonb, f
FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
            ?::float8[], ?::text[], ?::bytea[]) WITH ORDINALITY AS u(e, d, k, s, kd, si, c, r, ca, ra, h, f, n)
ORDER BY n
ON CONFLICT (event_id) DO NOTHING RETURNING cursor, event_id
"""
_NEW_STREAMS = (
    "INSERT INTO streams (device_id, key_id, max_seq) SELECT d, k, 0 FROM unnest(?::text[], ?::text[]) AS u(d, k)"
    " ON CONFLICT DO NOTHING"
)
_LOCK_STREAMS = (
    "SELECT device_id, key_id, max_seq FROM streams WHERE (device_id, key_id) IN"
    " (SELECT d, k FROM unnest(?::text[], ?::text[]) AS u(d, k)) ORDER BY device_id, key_id FOR UPDATE"
)
_GAPS = (
    "SELECT device_id, key_id, lo, hi FROM gaps WHERE (device_id, key_id) IN"
    " (SELECT d, k FROM unnest(?::text[], ?::text[]) AS u(d, k)) ORDER BY device_id, key_id, lo"
)
_SET_MAX = (
    "UPDATE streams SET max_seq = u.m FROM unnest(?::text[], ?::text[], ?::bigint[]) AS u(d, k, m)"
    " WHERE streams.device_id = u.d AND streams.key_id = u.k"
)
_DROP_GAPS = (
    "DELETE FROM gaps USING unnest(?::text[], ?::text[], ?::bigint[]) AS u(d, k, lo)"
    " WHERE gaps.device_id = u.d AND gaps.key_id = u.k AND gaps.lo = u.lo"
)
_ADD_GAPS = (
    "INSERT INTO gaps (device_id, key_id, lo, hi) SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[])"
)
_DEVICES = _UPSERT_DEVICE.replace(
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "SELECT d, si, c, ls, st, i::jsonb, sa, le FROM unnest(?::text[], ?::text[], ?::text[], ?::float8[], ?::text[],"
    " ?::text[], ?::text[], ?::float8[]) AS u(d, si, c, ls, st, i, sa, le)",
).format(greatest="GREATEST", newer=_NEWER)


def _text(value: Any) -> Any:
    """PostgreSQL's text and jsonb hold no NUL character: U+FFFD in the header copy (the frame, kept
    as received, still has the original bytes and signature)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_text(value), ensure_ascii=False, separators=(",", ":"))


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


def record_batch(x: Exec, batch: Sequence[Incoming]) -> list[Outcome]:
    rows = [
        (e.event_id, e.device_id, e.key_id, e.seq, e.kind, e.site, e.counter,
         _text(e.header.get("reason")) if e.kind == "read_failed" else None, e.created_at, e.received_at,
         _json(e.header), e.frame)
        for e in batch
    ]  # fmt: skip
    inserted = {event_id: int(cursor) for cursor, event_id in x(_INSERT, _columns(rows, 12)).fetchall()}
    floors = {e.event_id: seq_floor(e.header) for e in batch if not e.data and e.event_id in inserted}
    wanted = {(e.device_id, e.key_id) for e in batch if e.event_id in inserted and (e.data or floors.get(e.event_id))}
    streams = _lock_streams(x, wanted)
    held = _held(x, [e.event_id for e in batch if e.event_id not in inserted])
    outcomes, replays, taken = [], [], set()
    for e in batch:
        cursor = inserted.get(e.event_id)
        if cursor is None:
            outcomes.append(duplicate(held.get(e.event_id), e.frame))
            held.pop(e.event_id, None)  # a second copy in this batch is a plain duplicate
            continue
        if e.event_id in taken:
            outcomes.append(Outcome(Verdict.DUPLICATE))
            continue
        taken.add(e.event_id)
        if not e.data:
            floor = floors.get(e.event_id)
            if floor is not None:
                log_abandoned(e.device_id, abandon_below(streams[(e.device_id, e.key_id)], floor))
            outcomes.append(Outcome(Verdict.NEW, cursor=cursor))
            continue
        outcome = classify(streams[(e.device_id, e.key_id)], e.seq)
        if outcome.verdict is Verdict.REPLAY:
            replays.append(cursor)
            outcomes.append(outcome)
        else:
            outcomes.append(replace(outcome, cursor=cursor))
    if replays:
        x("DELETE FROM events WHERE cursor = ANY(?::bigint[])", (replays,))
    _save_streams(x, streams)
    devices = device_rows(batch, outcomes, _json)
    if devices:
        x(_DEVICES, _columns(devices, 8))
    return outcomes


def _held(x: Exec, event_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """``event_id -> (cursor, delivered, frame)`` of the batch's duplicates."""
    if not event_ids:
        return {}
    sql = "SELECT event_id, cursor, delivered, frame FROM events WHERE event_id = ANY(?::text[])"
    return {r[0]: (r[1], r[2], r[3]) for r in x(sql, (event_ids,)).fetchall()}


def _lock_streams(x: Exec, keys: set[tuple[str, str]]) -> dict[tuple[str, str], StreamState]:
    if not keys:
        return {}
    columns = _columns(sorted(keys), 2)
    x(_NEW_STREAMS, columns)
    states = {(d, k): StreamState(int(m)) for d, k, m in x(_LOCK_STREAMS, columns).fetchall()}
    for d, k, lo, hi in x(_GAPS, columns).fetchall():
        states[(d, k)].gaps.append((int(lo), int(hi)))
    for state in states.values():
        state.loaded = frozenset(state.gaps)
    return states


def _save_streams(x: Exec, streams: dict[tuple[str, str], StreamState]) -> None:
    changed = [(key, s) for key, s in streams.items() if s.dirty]
    if not changed:
        return
    x(_SET_MAX, _columns([(d, k, s.max_seq) for (d, k), s in changed], 3))
    dropped = [(d, k, lo) for (d, k), s in changed for lo, _hi in s.loaded - set(s.gaps)]
    added = [(d, k, lo, hi) for (d, k), s in changed for lo, hi in sorted(set(s.gaps) - s.loaded)]
    if dropped:
        x(_DROP_GAPS, _columns(dropped, 3))
    if added:
        x(_ADD_GAPS, _columns(added, 4))
