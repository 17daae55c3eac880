"""PostgreSQL: one batch in two round trips (three with duplicates), whatever its size.

A round trip to the server costs 0.1-0.5 ms (more on a busy host) and every one of them is taken
while the batch lock is held, so they are few: the statements are *pipelined* (psycopg's pipeline
mode: sent together, their results read in order) and each takes the whole batch as arrays
through ``unnest``, bound in binary (psycopg's text format escapes every array element with a
regular expression: it was most of the client's CPU per event). Each statement also costs the
client ~0.1-0.2 ms of psycopg's own work per batch, so there are few of them too.

1. take the batch lock (:data:`~.postgres.BATCH_LOCK`); insert every event (``ON CONFLICT
   (event_id) DO NOTHING RETURNING cursor, event_id``) in batch order (``WITH ORDINALITY ...
   ORDER BY``), so cursors follow the batch; create the batch's streams if new (every data event's,
   and a telemetry event's that carries ``seq_floor``), lock them and read their gaps (one
   ``SELECT ... LEFT JOIN gaps ... FOR UPDATE OF s``) — one round trip;
2. (only when the batch holds duplicates) read the held copies: cursor, delivered, frame;
3. classify in memory (:func:`~.base.classify`, the same machine as the generic path);
4. delete the replays just inserted; write the changed streams and gap differences; upsert the
   device rows; commit — one round trip.

The caller holds the transaction, in pipeline mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from idstation.mqtt.central.store.base import (
    Incoming,
    Outcome,
    StreamState,
    Verdict,
    classify,
    seq_floor,
    with_receipts,
)
from idstation.mqtt.central.store.deliveries import DELIVERED
from idstation.mqtt.central.store.rows import NEWER, UPSERT_DEVICE, device_rows, duplicate, telemetry_outcome
from idstation.mqtt.json_text import compact_json

__all__ = ["record_batch"]

_LOCK = "SELECT pg_advisory_xact_lock(%b)"
_INSERT = """
INSERT INTO events
    (batch, event_id, device_id, key_id, seq, kind, site, counter, reason, created_at, received_at, header, frame)
SELECT %b::bigint, e, d, k, s, kd, si, c, r, ca, ra, h::jsonb, f
FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[],
            %b::text[], %b::float8[], %b::text[], %b::bytea[])
     WITH ORDINALITY AS u(e, d, k, s, kd, si, c, r, ca, ra, h, f, n)
ORDER BY n
ON CONFLICT (event_id) DO NOTHING RETURNING cursor, event_id
"""
_NEW_STREAMS = (
    "INSERT INTO streams (device_id, key_id, max_seq) SELECT d, k, 0 FROM unnest(%b::text[], %b::text[]) AS u(d, k)"
    " ON CONFLICT DO NOTHING"
)
_LOCK_STREAMS = (  # the stream rows locked, each with its gaps (a stream without gaps: one row of NULLs)
    "SELECT s.device_id, s.key_id, s.max_seq, g.lo, g.hi FROM streams s LEFT JOIN gaps g"
    " ON g.device_id = s.device_id AND g.key_id = s.key_id WHERE (s.device_id, s.key_id) IN"
    " (SELECT d, k FROM unnest(%b::text[], %b::text[]) AS u(d, k)) ORDER BY s.device_id, s.key_id, g.lo"
    " FOR UPDATE OF s"
)
_HELD = f"SELECT event_id, cursor, {DELIVERED}, frame FROM events WHERE event_id = ANY(%b::text[])"  # noqa: S608
_DROP_REPLAYS = "DELETE FROM events WHERE cursor = ANY(%b::bigint[])"
_SET_MAX = (
    "UPDATE streams SET max_seq = u.m FROM unnest(%b::text[], %b::text[], %b::bigint[]) AS u(d, k, m)"
    " WHERE streams.device_id = u.d AND streams.key_id = u.k"
)
_DROP_GAPS = (
    "DELETE FROM gaps USING unnest(%b::text[], %b::text[], %b::bigint[]) AS u(d, k, lo)"
    " WHERE gaps.device_id = u.d AND gaps.key_id = u.k AND gaps.lo = u.lo"
)
_ADD_GAPS = (
    "INSERT INTO gaps (device_id, key_id, lo, hi)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[])"
)
_DEVICES = (
    UPSERT_DEVICE.replace(
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "SELECT d, si, c, ls, st, i::jsonb, sa, le FROM unnest(?::text[], ?::text[], ?::text[], ?::float8[],"
        " ?::text[], ?::text[], ?::text[], ?::float8[]) AS u(d, si, c, ls, st, i, sa, le)",
    )
    .format(greatest="GREATEST", newer=NEWER)
    .replace("?", "%b")
)


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
    """JSON text for a jsonb column. json.dumps writes a NUL as ``\\u0000`` (which jsonb refuses):
    only a text that holds that spelling is cleaned (:func:`_text`) and written again."""
    text = compact_json(value)  # json.dumps(value, ensure_ascii=False, separators=(",", ":")), faster
    if "\\u0000" in text:
        text = compact_json(_text(value))
    return text


_FLAT = frozenset((str, int, bool, type(None)))


def _header_json(e: Incoming) -> str:
    """The header's JSON for its jsonb column: the received text itself (no second serialisation)
    when jsonb reads it as the same value as :func:`_json`'s text — it holds no ``\\u`` escape
    (NUL, surrogates: :func:`_json` cleans or refuses those) and every value is a string, an
    integer, a boolean or null (a float's text, ``1.50`` or ``1E2``, is kept by jsonb as written;
    nested values go the old way rather than be walked)."""
    text = e.header_text
    if text is not None and "\\u" not in text:
        for value in e.header.values():
            if type(value) not in _FLAT:
                return _json(e.header)
        return text
    return _json(e.header)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


def _event_columns(batch: Sequence[Incoming]) -> list[list[Any]]:
    """The batch as the 12 arrays of :data:`_INSERT`."""
    reasons = [_text(e.header.get("reason")) if e.kind == "read_failed" else None for e in batch]
    return [
        [e.event_id for e in batch], [e.device_id for e in batch], [e.key_id for e in batch],
        [e.seq for e in batch], [e.kind for e in batch], [e.site for e in batch], [e.counter for e in batch],
        reasons, [e.created_at for e in batch], [e.received_at for e in batch],
        [_header_json(e) for e in batch], [e.frame for e in batch],
    ]  # fmt: skip


def record_batch(conn: Any, batch: Sequence[Incoming], lock_key: int, batch_id: int) -> list[Outcome]:
    """Record ``batch`` (its rows marked ``batch_id``) on ``conn`` (in a transaction, in pipeline
    mode); the outcomes carry receipts."""

    def x(sql: str, params: Any) -> Any:
        return conn.execute(sql, params, binary=True)

    x(_LOCK, (lock_key,))
    insert = x(_INSERT, [batch_id, *_event_columns(batch)])
    keys = sorted({(e.device_id, e.key_id) for e in batch if e.data or seq_floor(e.header)})
    locked = _lock_streams(x, keys)  # pipelined behind the insert: one round trip for all
    inserted = {event_id: cursor for cursor, event_id in insert.fetchall()}
    streams = locked()
    held = _held(x, [e.event_id for e in batch if e.event_id not in inserted])
    outcomes, replays = _classify(batch, inserted, held, streams)
    if replays:
        x(_DROP_REPLAYS, (replays,))
    _save_streams(x, streams)
    devices = device_rows(batch, outcomes, _json)
    if devices:
        x(_DEVICES, _columns(devices, 8))
    return with_receipts(batch, outcomes, streams)


def _classify(
    batch: Sequence[Incoming],
    inserted: dict[str, int],
    held: dict[str, tuple[Any, ...]],
    streams: dict[tuple[str, str], StreamState],
) -> tuple[list[Outcome], list[int]]:
    """Each event's outcome, and the cursors of the replays to take out again."""
    outcomes: list[Outcome] = []
    replays: list[int] = []
    taken: set[str] = set()
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
            outcomes.append(telemetry_outcome(e, streams.get((e.device_id, e.key_id)), cursor))
            continue
        o = classify(streams[(e.device_id, e.key_id)], e.seq, cursor)
        if o.verdict is Verdict.REPLAY:
            replays.append(cursor)
        outcomes.append(o)
    return outcomes, replays


def _held(x: Any, event_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """``event_id -> (cursor, delivered, frame)`` of the batch's duplicates."""
    if not event_ids:
        return {}
    return {r[0]: (r[1], r[2], r[3]) for r in x(_HELD, (event_ids,)).fetchall()}


def _lock_streams(x: Any, keys: list[tuple[str, str]]) -> Any:
    """Send: create the streams if new, lock them, read their gaps. Returns ``read() -> states``."""
    if not keys:
        return dict
    columns = _columns(keys, 2)
    x(_NEW_STREAMS, columns)
    locked = x(_LOCK_STREAMS, columns)

    def read() -> dict[tuple[str, str], StreamState]:
        states: dict[tuple[str, str], StreamState] = {}
        for d, k, m, lo, hi in locked.fetchall():
            state = states.get((d, k)) or states.setdefault((d, k), StreamState(m))
            if lo is not None:
                state.gaps.append((lo, hi))
        for state in states.values():
            state.loaded = frozenset(state.gaps)
        return states

    return read


def _save_streams(x: Any, streams: dict[tuple[str, str], StreamState]) -> None:
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
