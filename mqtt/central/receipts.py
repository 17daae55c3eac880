"""The centre's receipts: after a commit, tell each box which of its events the centre holds.

Theory of operation
-------------------
The listener calls :meth:`ReceiptBatcher.note` for every data event (identity, read_failed) the
store has *committed*, and for every duplicate (a box that had no receipt sent an event again:
it gets one now), with the stream's state as that commit left it (``(upto, above)``: the store's
:attr:`Outcome.receipt <idstation.mqtt.central.store.Outcome>`). ``note`` only marks the stream
``(device_id, key_id)`` as owing a receipt and keeps the latest state; it never does I/O, so it
is cheap on the commit path.

:meth:`ReceiptBatcher.publish_due` runs on the MQTT connection thread (the listener's idle hook):
for each stream whose receipt is due it takes the latest state noted, signs a receipt
(:func:`idstation.mqtt.receipt.build_receipt`) and publishes it QoS 1, retained, on
``idstation/v1/{site}/{counter}/receipt``. No store query: the commit already read the stream
(a note without a state — a caller that has none — is answered from the store, all such streams
in one round, ``receipt_states``). A state noted by this listener may be older than what another
listener committed since; the receipt is still true (it never covers an event not committed), at
worst the box resends one event and that listener receipts the duplicate with its newer state.

A stream gets at most one receipt per ``interval`` (default 0.2 s): a box sending 100 events/s
gets 5 receipts/s, each covering everything committed so far. The first receipt after a quiet
period goes out at once. Under load (more than ``busy_streams`` streams owing a receipt) the
interval grows in proportion, up to ``max_interval`` (``central listen --receipt-max-interval``).

What a receipt lists above ``upto``: first every number noted since the stream's last receipt
(the events just committed or sent again: exactly what the box is waiting for), then the lowest
other held numbers, 512 in all. So a stream whose ``upto`` cannot move (a gap that never fills,
e.g. the first stream of a renewed key, numbered from where the old key stopped) still gets each
new event receipted, instead of the same lowest 512 numbers again and again.

A receipt that could not be handed to the broker (no connection) stays due and goes out after
the reconnect. A receipt lost later (broker restart) costs nothing either: the box sends the
event again after its timeout, the centre sees a duplicate and receipts it again.

Retained messages keep one per topic: when one counter carries two streams (a key rotation, or
two boxes bound to one counter), the retained receipt is the latest of either; a box that finds
its stream missing waits for its resend to be receipted.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import structlog
from idstation.hal.errors import IdstationError
from idstation.mqtt.receipt import MAX_ABOVE, MAX_SEQ, build_receipt, receipt_topic
from idstation.mqtt.seal import Signer, load_signing_key

log = structlog.get_logger(__name__)

DEFAULT_INTERVAL = 0.2
# Under load: at most this between two receipts of a busy stream. With 2,000 busy streams a listener
# sends ~1,000 receipts/s instead of ~4,000 at 0.5 s (bench/central.py --boxes 2000: 0.3-0.4 receipts
# per event instead of 0.9; RabbitMQ drains 5,599 and 6,488 events/s against 5,892 and 5,431). A box
# resends an event only after its receipt timeout (30 s); a quiet centre still receipts within 0.2 s.
MAX_INTERVAL = 2.0
BUSY_STREAMS = 50  # more streams due at once than this: the interval grows in proportion
RECEIPT_KEY_FILE = "receipt_key.pem"

__all__ = [
    "DEFAULT_INTERVAL",
    "RECEIPT_KEY_FILE",
    "ReceiptBatcher",
    "ReceiptState",
    "default_receipt_key",
    "load_receipt_signer",
    "paho_publisher",
    "receipt_signer_for",
]


State = tuple[int, Sequence[int]]  # (upto, above) of one stream, as committed


class ReceiptState(Protocol):
    """What the store tells a receipt: ``(upto, above)`` of one stream, as committed (only for
    notes that carry no state)."""

    def receipt_state(self, device_id: str, key_id: str) -> tuple[int, list[int]]: ...


class _Stream(NamedTuple):
    """One stream's receipt key. A named tuple: one is made per noted event on the commit thread
    and hashed at every dict step (a frozen dataclass cost ~3x in both)."""

    site: str
    counter: str
    device_id: str
    key_id: str


class ReceiptBatcher:
    """Streams owing a receipt, at most one receipt per stream per ``interval``. Thread-safe."""

    def __init__(
        self,
        signer: Signer,
        state: ReceiptState | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_interval: float = MAX_INTERVAL,
        busy_streams: int = BUSY_STREAMS,
        clock: Callable[[], float] = time.monotonic,
        on_sent: Callable[[str, str, int, int], None] | None = None,
    ) -> None:
        if interval < 0:
            raise TypeError("interval is non-negative")
        self.signer, self.state, self.interval, self.clock = signer, state, interval, clock
        self.max_interval, self.busy_streams = max(interval, max_interval), max(1, busy_streams)
        self._interval_now = interval  # grown under load (current_interval)
        self._on_sent = on_sent  # (device_id, key_id, upto, len(above)): for benchmarks and metrics
        self._lock = threading.Lock()
        self._due: dict[_Stream, float] = {}  # stream -> when its receipt may go out
        self._seqs: dict[_Stream, set[int]] = {}  # stream -> numbers noted since its last receipt
        self._states: dict[_Stream, State] = {}  # stream -> (upto, above) of its latest noted commit
        self._last: dict[_Stream, float] = {}  # stream -> when its last receipt went out
        self.sent = 0
        self.failed = 0

    def note(
        self,
        site: str,
        counter: str,
        device_id: str,
        key_id: str,
        seq: int | None = None,
        *,
        state: State | None = None,
    ) -> None:
        """The store committed (or already held) data event ``seq`` of this stream, leaving the
        stream at ``state`` (``(upto, above)``; None: ask the store when the receipt is due)."""
        stream = _Stream(site, counter, device_id, key_id)
        with self._lock:
            self._note(stream, seq, state, self.clock)

    def _note(self, stream: _Stream, seq: int | None, state: State | None, clock: Callable[[], float]) -> None:
        """:meth:`note`'s work, under the lock."""
        if state is not None:
            self._states[stream] = state
        else:
            self._states.pop(stream, None)
        noted = self._seqs.setdefault(stream, set())  # present = a receipt is owed
        if type(seq) is int and 0 < seq <= MAX_SEQ and len(noted) < MAX_ABOVE:
            noted.add(seq)
        if stream not in self._due:
            last = self._last.get(stream)
            now = clock()
            self._due[stream] = now if last is None else max(now, last + self._interval_now)

    def note_header(self, topic: str, header: dict[str, Any], state: State | None = None) -> None:
        """:meth:`note` from a verified event's topic and header (a duplicate's, for instance)."""
        self.note_headers([(topic, header, True, state)])

    def note_headers(self, events: Sequence[tuple[str, dict[str, Any], bool, State | None]]) -> None:
        """:meth:`note_header` for many events, ``(topic, header, with_seq, state)`` each, in one
        turn of the lock (the commit thread notes a whole batch); ``with_seq=False`` notes the
        stream only (a telemetry event whose ``seq_floor`` moved it)."""
        streams = []
        for topic, header, with_seq, state in events:
            parts = topic.split("/")
            device_id, key_id = header.get("device_id"), header.get("key_id")
            if len(parts) == 5 and isinstance(device_id, str) and isinstance(key_id, str):
                seq = header.get("seq") if with_seq else None
                stream = _Stream(parts[2], parts[3], device_id, key_id)
                streams.append((stream, seq if isinstance(seq, int) else None, state))
        if not streams:
            return
        now: list[float] = []  # the clock read once, when a stream first needs it

        def clock() -> float:
            if not now:
                now.append(self.clock())
            return now[0]

        with self._lock:
            for stream, seq, state in streams:
                self._note(stream, seq, state, clock)

    def pending(self) -> int:
        with self._lock:
            return len(self._due)

    def next_due(self) -> float | None:
        """The clock time of the earliest due receipt, or None."""
        with self._lock:
            return min(self._due.values(), default=None)

    def publish_due(self, publish: Callable[[str, bytes], bool]) -> int:
        """Build and publish every receipt that is due; ``publish(topic, payload) -> handed over``.

        Returns how many went out. A receipt not handed over stays due; a store failure too. Each
        receipt says the latest state noted for its stream (streams noted without one are read
        from the store, all in one round). Under load the interval grows with the number of
        streams owing a receipt (:meth:`current_interval`, at most ``max_interval``), so receipts
        stay a small share of the centre's work while every stream still gets one at least every
        ``max_interval``. (It counted only the streams due at the same tick: with the pump's
        20 ms tick that number stays small, and 2,000 busy streams got a receipt every ~0.4 s
        each, one per event in bench/central.py.)
        """
        now = self.clock()
        with self._lock:
            owing = len(self._due)  # the load: streams owing a receipt, due now or later
            due = [s for s, at in self._due.items() if at <= now]
            noted = {s: self._seqs.pop(s, set()) for s in due}
            known = {s: self._states.pop(s) for s in due if s in self._states}
        if not due:
            return 0
        self._interval_now = self.current_interval(owing)
        try:
            states = self._read_missing(due, known)
        except (sqlite3.Error, OSError, IdstationError) as exc:  # the store is unavailable: try again later
            log.warning("central_receipt_state_failed", streams=len(due), error=type(exc).__name__)
            self.failed += 1
            self._owe_again(noted, known)
            return 0
        sent = 0
        for i, stream in enumerate(due):
            ok = self._publish_one(stream, states.get(stream, (0, ())), noted[stream], publish)
            if ok is None:  # impossible: dropped
                continue
            if not ok:
                self.failed += 1
                self._owe_again({s: noted[s] for s in due[i:]}, {s: states[s] for s in due[i:] if s in states})
                break  # no connection: the rest waits too
            with self._lock:
                self._last[stream] = now
                if stream in self._seqs:  # noted while this one was being built: owed again
                    self._due[stream] = now + self._interval_now
                else:
                    self._due.pop(stream, None)
            sent += 1
            self.sent += 1
        self._forget_quiet(now)
        return sent

    def _publish_one(
        self, stream: _Stream, state: State, noted: set[int], publish: Callable[[str, bytes], bool]
    ) -> bool | None:
        """Sign and hand over one receipt: True, False (not handed over) or None (impossible)."""
        upto, held = state
        try:
            above = _above(upto, noted, held)
            payload = build_receipt(stream.device_id, stream.key_id, upto, above, self.signer)
            ok = publish(receipt_topic(stream.site, stream.counter), payload)
        except (OSError, IdstationError) as exc:
            log.warning("central_receipt_publish_failed", device_id=stream.device_id, error=type(exc).__name__)
            return False
        except TypeError as exc:  # a state no receipt can say (a store bug): never retried in a loop
            log.error("central_receipt_impossible", device_id=stream.device_id, error=str(exc))
            with self._lock:
                self._due.pop(stream, None)
            return None
        if ok and self._on_sent:
            self._on_sent(stream.device_id, stream.key_id, upto, len(above))
        return ok

    def current_interval(self, owing: int) -> float:
        """The interval while ``owing`` streams owe a receipt: ``interval`` up to ``busy_streams``
        of them, then growing in proportion (receipts/s stay ~``busy_streams / interval``), never
        above ``max_interval``."""
        grown = self.interval * owing / self.busy_streams
        return max(self.interval, min(self.max_interval, grown))

    def _read_missing(self, due: list[_Stream], known: dict[_Stream, State]) -> dict[_Stream, State]:
        """``known``, plus the store's state of every due stream noted without one (one round)."""
        missing = [s for s in due if s not in known]
        if not missing or self.state is None:
            return known
        keys = [(s.device_id, s.key_id) for s in missing]
        many = getattr(self.state, "receipt_states", None)
        read = dict(many(keys)) if many is not None else {key: self.state.receipt_state(*key) for key in keys}
        return {**known, **{s: read.get((s.device_id, s.key_id), (0, [])) for s in missing}}

    def _owe_again(self, noted: dict[_Stream, set[int]], states: dict[_Stream, State]) -> None:
        """Still owed (no store, no connection), with the numbers each receipt was to carry and
        its state (unless a newer one was noted meanwhile)."""
        with self._lock:
            for stream, seqs in noted.items():
                self._seqs.setdefault(stream, set()).update(seqs)
            for stream, state in states.items():
                self._states.setdefault(stream, state)

    def _forget_quiet(self, now: float) -> None:
        """Drop the send times of streams quiet for a while (they would be due at once anyway)."""
        if len(self._last) < 1024:
            return
        with self._lock:
            for stream in [s for s, at in self._last.items() if now - at > self._interval_now]:
                del self._last[stream]


def _above(upto: int, noted: set[int], held: Sequence[int]) -> list[int]:
    """The numbers just noted (held: committed or already held), then the lowest other held ones."""
    first = sorted(s for s in noted if s > upto)[:MAX_ABOVE]
    rest = [s for s in held if s > upto and s not in noted][: MAX_ABOVE - len(first)]
    return sorted(first + rest)


def paho_publisher(client: Any) -> Callable[[str, bytes], bool]:
    """``publish(topic, payload)`` over a connected paho client: QoS 1, retained."""

    def publish(topic: str, payload: bytes) -> bool:
        info = client.publish(topic, payload, qos=1, retain=True)
        return bool(info.rc == 0)

    return publish


def default_receipt_key(central_key: str | Path) -> Path:
    """``receipt_key.pem`` in the directory of the central key file."""
    return Path(central_key).parent / RECEIPT_KEY_FILE


def load_receipt_signer(path: str | Path) -> Signer:
    """The centre's receipt signing key (Ed25519 PKCS#8 PEM) as a :class:`Signer`."""
    return Signer(load_signing_key(Path(path)))


def receipt_signer_for(central_key: str | Path, receipt_key: str | Path | None = None) -> Signer | None:
    """The signer of ``central listen``: ``receipt_key`` (must load, else SealError), else
    ``receipt_key.pem`` beside the central key; None (receipts off, logged) when that is absent."""
    if receipt_key:
        return load_receipt_signer(receipt_key)
    path = default_receipt_key(central_key)
    if not path.exists():
        log.warning("central_receipts_off", receipt_key=str(path), consequence="boxes keep and resend every event")
        return None
    return load_receipt_signer(path)
