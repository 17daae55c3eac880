"""The central store's interface: what a listener records and what the services read.

One interface, two backends (``sqlite`` for a site or the demo, ``postgresql`` for a province or
the nation), chosen by URL (:func:`idstation.mqtt.central.store.open_store`).

Theory of operation. :meth:`Store.record` takes a batch of verified events and, in ONE transaction:
inserts each event (its ``event_id`` is unique: an id already held is a *duplicate*, dropped);
for a data event (identity, read_failed) locks its stream ``(device_id, key_id)`` and classifies
its ``seq`` against the stream's highest ``seq`` and open gaps (:func:`classify`); a *replay*
(a new event id with a ``seq`` already used) is taken out again. Telemetry (status, heartbeat)
never moves a stream. Every accepted event gets a *cursor*: strictly increasing in commit order,
so a reader that resumes after cursor C misses nothing and sees nothing twice
(:meth:`Store.events_after`). The broker is acknowledged, receipts published and events delivered
only after ``record`` returns (the caller's job).

Each outcome of a data event (accepted, duplicate or replay) carries its stream's receipt state
as the batch committed it (:attr:`Outcome.receipt`: ``(upto, above)``, :func:`receipt_of`), so
the receipts need no store query of their own; so does a telemetry event whose ``seq_floor``
closed gaps (the stream's ``upto`` moved: the box is owed a receipt).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from idstation.mqtt.receipt import receipt_range

__all__ = [
    "RECEIPT_OWED",
    "Incoming",
    "Outcome",
    "ReceiptState",
    "Store",
    "StoredEvent",
    "StreamState",
    "Verdict",
    "abandon_below",
    "classify",
    "receipt_of",
    "seq_floor",
    "with_receipts",
]

ReceiptState = tuple[int, tuple[int, ...]]  # (upto, above) of one stream: what a receipt says
RECEIPT_OWED: ReceiptState = (0, ())  # a telemetry outcome's mark until with_receipts fills it in


class Verdict(enum.Enum):
    NEW = "new"  # next in sequence (or telemetry)
    GAP = "gap"  # accepted, but events before it are missing
    FILLED = "filled"  # accepted: a late event that fills a gap
    DUPLICATE = "duplicate"  # the event id is held already: dropped
    REPLAY = "replay"  # a new event id with a used seq: rejected


@dataclass(frozen=True, slots=True)
class Incoming:
    """A verified event to record. ``frame`` is the signed frame as received (personal part sealed).

    :class:`StoredEvent` is the same event as read back, with its cursor."""

    event_id: str
    device_id: str
    key_id: str
    seq: int
    kind: str
    site: str
    counter: str
    created_at: str
    received_at: float
    header: dict[str, Any] = field(repr=False)
    frame: bytes = field(repr=False)
    # the JSON text ``header`` was parsed from (strictly: no duplicate key, no NaN), when ``header``
    # is exactly that parse (None when unknown, or when anything was added to it): PostgreSQL's
    # jsonb may then read this text rather than a new serialisation of ``header`` (:mod:`.pg_batch`)
    header_text: str | None = field(default=None, repr=False, compare=False, kw_only=True)

    @property
    def data(self) -> bool:
        return self.kind in ("identity", "read_failed")


class Outcome(NamedTuple):
    """What :meth:`Store.record` made of one event; ``cursor`` is None when nothing was inserted.

    A named tuple (immutable, compared by value): up to three are made per event on the commit
    thread, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost ~3x."""

    verdict: Verdict
    missing: tuple[int, int] | None = None  # the gap opened (lo, hi), for GAP
    expected: int | None = None  # the next seq the stream waits for (GAP, REPLAY)
    cursor: int | None = None
    # DUPLICATE of a held event (same frame) that was never marked delivered: deliver it again
    redeliver: bool = False
    # the stream's (upto, above) as this batch committed it; set for data events (any verdict) and
    # for telemetry whose seq_floor closed gaps
    receipt: ReceiptState | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict in (Verdict.NEW, Verdict.GAP, Verdict.FILLED)


@dataclass(frozen=True, slots=True)
class StoredEvent(Incoming):
    """A recorded event as read back: the fields of :class:`Incoming` plus its ``cursor`` (commit order)."""

    cursor: int


@dataclass(slots=True)
class StreamState:
    """One stream's highest seq and open gaps ``[lo, hi]`` (sorted), as held in a transaction."""

    max_seq: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    dirty: bool = False
    loaded: frozenset[tuple[int, int]] = frozenset()  # the gaps as read: only the difference is written


def classify(state: StreamState, seq: int, cursor: int | None = None) -> Outcome:
    """Classify ``seq`` and update ``state`` (pure; docs/wire-format.md states the same machine).

    Streams start at 1. ``seq == max+1``: new. ``seq > max+1``: a gap ``[max+1, seq-1]`` opens
    (the first event of a stream may open ``[1, seq-1]``: the live lane can overtake the backlog).
    ``seq`` inside an open gap: filled (the gap splits). Any other ``seq <= max``: replay.
    ``cursor`` (the inserted row's) goes into an accepted outcome, never into a replay's.
    """
    if seq == state.max_seq + 1:
        state.max_seq, state.dirty = seq, True
        return Outcome(Verdict.NEW, cursor=cursor)
    if seq > state.max_seq + 1:
        missing = (state.max_seq + 1, seq - 1)
        state.gaps.append(missing)
        state.max_seq, state.dirty = seq, True
        return Outcome(Verdict.GAP, missing, missing[0], cursor)
    for i, (lo, hi) in enumerate(state.gaps):
        if lo <= seq <= hi:
            rest = [(a, b) for a, b in ((lo, seq - 1), (seq + 1, hi)) if a <= b]
            state.gaps[i : i + 1] = rest
            state.dirty = True
            return Outcome(Verdict.FILLED, cursor=cursor)
    return Outcome(Verdict.REPLAY, expected=state.max_seq + 1)


def receipt_of(state: StreamState) -> ReceiptState:
    """A stream's receipt state: ``upto`` and the held numbers above it (at most MAX_ABOVE)."""
    if not state.gaps:
        return state.max_seq, ()
    upto, above = receipt_range(state.max_seq, state.gaps)
    return upto, tuple(above)


def with_receipts(
    batch: Sequence[Incoming], outcomes: list[Outcome], streams: dict[tuple[str, str], StreamState]
) -> list[Outcome]:
    """``outcomes`` with each data event's stream receipt state (the streams as committed), and
    each telemetry event's marked :data:`RECEIPT_OWED` (its ``seq_floor`` closed gaps)."""
    receipts = {key: receipt_of(state) for key, state in streams.items()}
    for i, e in enumerate(batch):
        owed = e.data or outcomes[i].receipt is not None
        receipt = receipts.get((e.device_id, e.key_id)) if owed else None
        if receipt is not None:
            o = outcomes[i]
            outcomes[i] = Outcome(o.verdict, o.missing, o.expected, o.cursor, o.redeliver, receipt)
    return outcomes


def seq_floor(header: dict[str, Any]) -> int | None:
    """``info.seq_floor`` of a telemetry header: the lowest data seq the box may still send."""
    info = header.get("info")
    floor = info.get("seq_floor") if isinstance(info, dict) else None
    return floor if isinstance(floor, int) and not isinstance(floor, bool) and floor > 0 else None


def abandon_below(state: StreamState, floor: int) -> list[tuple[int, int]]:
    """Close the open gaps below ``floor`` (the box will never send those numbers: they are lost),
    so a receipt's ``upto`` moves past them. Returns the ranges given up."""
    abandoned: list[tuple[int, int]] = []
    kept: list[tuple[int, int]] = []
    for lo, hi in state.gaps:
        if hi < floor:
            abandoned.append((lo, hi))
        elif lo < floor:
            abandoned.append((lo, floor - 1))
            kept.append((floor, hi))
        else:
            kept.append((lo, hi))
    if abandoned:
        state.gaps, state.dirty = kept, True
    return abandoned


class Store(Protocol):
    """The central store (thread-safe; every method may raise StoreUnavailable or StoreError)."""

    url: str

    def migrate(self) -> int: ...  # apply pending migrations; returns the schema version
    def schema_version(self) -> int: ...  # 0: never migrated
    def ping(self) -> None: ...
    def close(self) -> None: ...
    def record(self, batch: Sequence[Incoming]) -> list[Outcome]: ...
    def receipt_state(self, device_id: str, key_id: str) -> tuple[int, list[int]]: ...
    def receipt_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, list[int]]]: ...
    def events_after(
        self,
        cursor: int,
        limit: int = 1000,
        *,
        site: str | None = None,
        counter: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[StoredEvent]: ...
    def latest_event(
        self, site: str, counter: str, kinds: Sequence[str], since: float | None = None
    ) -> StoredEvent | None: ...
    def device_states(self) -> list[dict[str, Any]]: ...
    def failure_counts(self, since: float) -> dict[str, dict[str, int]]: ...
    def hourly_counts(self, since: float) -> list[dict[str, Any]]: ...
    def add_audit(self, client: str, event_id: str, endpoint: str, at: float) -> None: ...
    def audit_since(self, since: float) -> list[dict[str, Any]]: ...
    def purge(self, before: float) -> int: ...
    def head(self) -> int: ...
    def mark_delivered(self, cursors: Sequence[int]) -> None: ...
    def gaps(self, device_id: str | None = None) -> list[tuple[str, int, int]]: ...
    def max_seq(self, device_id: str) -> int | None: ...
