"""The listener's pipeline: receive -> verify and open -> record (one transaction) -> ack -> receipts -> deliver.

Theory of operation. The transport (MQTT or AMQP adapter, :mod:`.transport`) hands each read
burst to :meth:`Intake.on_messages` (or one delivery to :meth:`Intake.on_message`), which only
queues it (a bounded queue: when it is full the
transport's thread waits, so a listener whose store is slow stops reading). A check thread
takes a batch — at most ``max_batch`` deliveries, at most ``max_wait`` seconds after the first,
and no longer than ``idle_gap`` without a new one (a broker's in-flight window may be smaller
than a batch) — and for it:

1. checks each delivery (:meth:`CentralProcessor.check`: topic, frame, registry, signature,
   header, seal; no store), so a hostile message costs no transaction, and hands the batch to
   the commit thread (checking the next batch overlaps this one's commit), which
2. records every checked event in ONE store transaction (:meth:`Store.record`);
3. acknowledges every delivery of the batch, in delivery order (rejected ones too: a rejection
   is final) — only now may the broker forget them;
4. tells the receipts (H7's :class:`ReceiptBatcher`) which streams owe a receipt, with each
   stream's state as this commit left it (``Outcome.receipt``: the receipts read no store);
5. delivers accepted events (``on_event``) and reports rejections (``on_reject``), then marks
   the delivered events in the store (``mark_delivered``, not waited for on disk).

A crash after 2 and before 5 does not lose the delivery when the message comes again — the
broker delivers an unacknowledged batch again, a box resends an event no receipt covered: the
store finds the event held but not marked delivered (the same frame) and it is delivered then
(at least once); the redelivery of an event already delivered is a plain duplicate.

``central export`` reads the store by cursor, so a
consumer of the export sees every committed event exactly once whatever the listener did.

When the store is unavailable (PostgreSQL down) nothing is acknowledged: the thread asks the
transport to pause, pings the store every ``retry_s`` seconds, resumes and records the same
batch again. A batch the store refuses for another reason is recorded one event at a time, and
an event the store cannot hold is rejected as ``unstorable`` (a poison message never blocks).

``IDSTATION_TEST_FAULT=after_commit[:N]`` (tests only) kills the process with SIGKILL right after
the N-th commit (default the first), before anything is acknowledged or delivered.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from idstation.mqtt.central.store import Incoming, Outcome, StoreError, StoreUnavailable
from idstation.mqtt.central.transport import Delivery, Transport
from idstation.mqtt.errors import EventRejected
from idstation.mqtt.receipt import is_receipt_topic
from idstation.mqtt.topics import is_provisioning_topic

log = structlog.get_logger(__name__)

__all__ = ["DEFAULT_MAX_BATCH", "WAITS", "Intake", "default_max_batch"]

# Events per store transaction by default. A transaction's round trips and commit cost about the
# same at 200 or 400 events; bench/central.py drained ~1.1-1.6x faster with 400 than with 200
# (docs/ops/scale.md).
DEFAULT_MAX_BATCH = 400

# (thread, what it waits for): the keys of Intake.waited
WAITS = (("check", "deliveries"), ("check", "commit"), ("commit", "check"))

_Item = tuple[Delivery, Any]  # (delivery, Checked | EventRejected | None for a non-event topic)


def default_max_batch(prefetch: int | None) -> int:
    """Events per store transaction when not given: :data:`DEFAULT_MAX_BATCH`, and on AMQP at most
    half of ``prefetch`` (a listener must hold the next batch while one commits)."""
    return DEFAULT_MAX_BATCH if prefetch is None else max(1, min(DEFAULT_MAX_BATCH, prefetch // 2))


def _fault_after() -> int | None:
    spec = os.environ.get("IDSTATION_TEST_FAULT", "")
    if not spec.startswith("after_commit"):
        return None
    _, _, count = spec.partition(":")
    return int(count) if count.isdigit() else 1


class Intake:
    """Batches deliveries and runs them through check -> record -> ack -> receipts -> deliver."""

    def __init__(
        self,
        processor: Any,
        transport: Transport,
        *,
        on_event: Callable[[Any], None],
        on_reject: Callable[[str, EventRejected], None] | None = None,
        receipts: Any = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = 0.05,
        idle_gap: float = 0.005,
        retry_s: float = 1.0,
        on_batch: Callable[[int, float], None] | None = None,
        capacity: int | None = None,
        on_delivered: Callable[[], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise TypeError("max_batch >= 1 and max_wait >= 0")
        self.processor, self.store, self.transport = processor, processor.store, transport
        self._on_event, self._on_reject, self.receipts = on_event, on_reject, receipts
        self.max_batch, self.max_wait, self.idle_gap, self.retry_s = max_batch, max_wait, idle_gap, retry_s
        self._on_batch = on_batch  # (batch size, commit seconds): metrics
        self._on_delivered = on_delivered  # after each batch's on_event calls (the CLI flushes its lines)
        # at least the transport's prefetch, so its thread never waits here in normal operation
        # read bursts (lists of deliveries, in order); what the broker may have in flight bounds the
        # deliveries, this bounds the hand-overs
        self._queue: queue.Queue[list[Delivery]] = queue.Queue(maxsize=max(capacity or 0, 2 * max_batch))
        self._carry: list[Delivery] = []  # the check thread's: a burst's rest beyond max_batch
        self._checked: queue.Queue[tuple[list[Delivery], list[_Item]]] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.store_down = threading.Event()  # set while the store is unavailable (readiness)
        self.commits = 0
        # seconds each thread spent waiting, by what it waited for (each key written by one thread):
        # where a listener's pipeline stalls — the broker (deliveries), the store (commit), or the
        # checks (the commit thread idle) — for the metrics (idstation_pipeline_wait_seconds_total)
        self.waited = dict.fromkeys(WAITS, 0.0)
        self._fault = _fault_after()

    # --- the transport's side ------------------------------------------------------------------

    def on_message(self, delivery: Delivery) -> None:
        """Queue one delivery; waits (bounded turns, stop-aware) while the queue is full."""
        self.on_messages([delivery])

    def on_messages(self, deliveries: list[Delivery]) -> None:
        """Queue one read burst (the transport's ``on_messages``), in delivery order, with one
        hand-over: a queue put per message cost the transport thread ~5 % and most GIL hand-offs."""
        while deliveries and not self._stop.is_set():
            try:
                self._queue.put(deliveries, timeout=0.2)
                return
            except queue.Full:
                continue

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Two threads: one checks batch N+1 (CPU) while the other commits batch N (mostly waiting
        for the database), handing batches over in order through a one-slot queue."""
        if not self._threads:
            for target, name in ((self._run_checks, "check"), (self._run_commits, "commit")):
                thread = threading.Thread(target=target, name=f"idstation-central-{name}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand; queued deliveries stay unacknowledged (the broker keeps them)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _run_checks(self) -> None:
        waited, clock = self.waited, time.monotonic
        while not self._stop.is_set():
            started = clock()
            batch = self._take()
            waited["check", "deliveries"] += clock() - started
            if not batch:
                continue
            try:
                items = [self._check(d) for d in batch]
            except Exception as exc:  # the check thread's supervisor (check maps a message's faults already)
                log.error("central_batch_failed", error=type(exc).__name__, size=len(batch))
                self.transport.requeue(batch)
                continue
            started = clock()
            while not self._stop.is_set():  # bounded turns, stop-aware
                try:
                    self._checked.put((batch, items), timeout=0.2)
                    break
                except queue.Full:
                    continue
            waited["check", "commit"] += clock() - started

    def _run_commits(self) -> None:
        waited, clock = self.waited, time.monotonic
        while not self._stop.is_set():
            started = clock()
            try:
                batch, items = self._checked.get(timeout=0.2)
            except queue.Empty:
                continue
            finally:
                waited["commit", "check"] += clock() - started
            try:
                self._commit(batch, items)
            except Exception as exc:  # the commit thread's supervisor: the batch is not acked, never die
                log.error("central_batch_failed", error=type(exc).__name__, size=len(batch))
                self.transport.requeue(batch)  # the broker delivers it again (MQTT: after a reconnect)
                self._stop.wait(self.retry_s)

    def _take(self) -> list[Delivery]:
        """At most ``max_batch`` deliveries in order; a burst's rest waits for the next batch."""
        batch, self._carry = self._carry, []
        if not batch:
            try:
                batch = list(self._queue.get(timeout=0.2))
            except queue.Empty:
                return []
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.extend(self._queue.get(timeout=min(left, self.idle_gap)))
            except queue.Empty:
                break
        if len(batch) > self.max_batch:
            batch, self._carry = batch[: self.max_batch], batch[self.max_batch :]
        return batch

    # --- one batch -----------------------------------------------------------------------------

    def _commit(self, batch: Sequence[Delivery], items: Sequence[_Item]) -> None:
        checked = [c for _, c in items if c is not None and not isinstance(c, EventRejected)]
        started = time.monotonic()
        outcomes = self._record([c.incoming for c in checked])
        if outcomes is None:  # stopping while the store is down: nothing acknowledged
            return
        if self._on_batch:
            self._on_batch(len(checked), time.monotonic() - started)
        self.commits += 1
        if self._fault is not None and self.commits >= self._fault:
            os.kill(os.getpid(), signal.SIGKILL)  # tests only: die between commit and acknowledgement
        self.transport.ack(batch)
        by_checked = dict(zip(map(id, checked), outcomes, strict=True))
        results = [(d, c, self._result(c, by_checked)) for d, c in items]
        self._note_receipts(results, by_checked)
        self._deliver(results)

    def _check(self, delivery: Delivery) -> _Item:
        if is_provisioning_topic(delivery.topic) or is_receipt_topic(delivery.topic):
            return delivery, None  # not events: acknowledged quietly
        try:
            return delivery, self.processor.check(delivery.topic, delivery.payload, delivery.received_at)
        except EventRejected as exc:
            return delivery, exc

    def _record(self, incoming: list[Incoming]) -> list[Outcome | None] | None:
        """Record the batch (None per event the store cannot hold); wait out an unavailable store."""
        while not self._stop.is_set():
            try:
                outcomes: list[Outcome | None] = list(self.store.record(incoming))
                self.store_down.clear()
                return outcomes
            except StoreUnavailable as exc:
                self._wait_for_store(exc)
            except StoreError as exc:
                log.error("central_batch_refused", error=str(exc), size=len(incoming))
                return [self._record_alone(e) for e in incoming] if len(incoming) > 1 else [None]
        return None

    def _record_alone(self, event: Incoming) -> Outcome | None:
        try:
            return self.store.record([event])[0]
        except StoreUnavailable:
            raise
        except StoreError:
            return None

    def _wait_for_store(self, exc: StoreError) -> None:
        """Stop consuming until the store answers again (bounded turns, stop-aware)."""
        if not self.store_down.is_set():
            log.error("central_store_unavailable", error=str(exc), action="consumption paused")
            self.store_down.set()
            self.transport.pause()
        while not self._stop.wait(self.retry_s):
            try:
                self.store.ping()
            except StoreError:
                continue
            log.info("central_store_available", action="consumption resumed")
            self.transport.resume()
            return

    def _result(self, checked: Any, outcomes: dict[int, Outcome | None]) -> Any:
        """The accepted event, an EventRejected, or None (not an event)."""
        if checked is None or isinstance(checked, EventRejected):
            return checked
        outcome = outcomes[id(checked)]
        if outcome is None:
            return EventRejected("unstorable", "the store cannot hold this event")
        try:
            return self.processor.accept(checked, outcome)
        except EventRejected as exc:
            if outcome.redeliver:  # held but never delivered (a crash after the commit): deliver it now
                return self.processor.redelivered(checked, outcome)
            return exc

    def _note_receipts(self, results: Sequence[tuple[Delivery, Any, Any]], outcomes: dict[int, Outcome | None]) -> None:
        """Streams with a committed (or already held: the box had no receipt) data event owe a
        receipt, which says the stream's state as the store's commit left it (no store query);
        so do streams whose gaps a telemetry event's ``seq_floor`` closed."""
        if self.receipts is None:
            return
        noted = []
        for delivery, checked, result in results:
            if checked is None or isinstance(checked, EventRejected):
                continue
            outcome = outcomes.get(id(checked))
            state = outcome.receipt if outcome is not None else None
            if not checked.incoming.data:  # telemetry: only when its seq_floor moved the stream
                if state is not None and not isinstance(result, EventRejected):
                    noted.append((delivery.topic, checked.header, False, state))
            elif not isinstance(result, EventRejected) or result.reason == "duplicate":
                noted.append((delivery.topic, checked.header, True, state))
        self.receipts.note_headers(noted)  # one turn of the receipts' lock per batch

    def _deliver(self, results: Sequence[tuple[Delivery, Any, Any]]) -> None:
        delivered: list[int] = []
        for delivery, _checked, result in results:
            if result is not None and not isinstance(result, EventRejected) and result.cursor is not None:
                delivered.append(result.cursor)
            try:
                if isinstance(result, EventRejected):
                    level = log.info if result.reason == "duplicate" else log.warning
                    level("central_event_rejected", reason=result.reason, topic=delivery.topic, error=str(result))
                    if self._on_reject:
                        self._on_reject(delivery.topic, result)
                elif result is not None:
                    self._on_event(result)
            except Exception as exc:  # the owner's callback must not stop the pipeline
                log.error("central_callback_failed", error=type(exc).__name__)
        if self._on_delivered is not None:
            try:
                self._on_delivered()
            except Exception as exc:  # the owner's callback must not stop the pipeline
                log.error("central_callback_failed", error=type(exc).__name__)
        try:
            self.store.mark_delivered(delivered)
        except StoreError as exc:  # only costs a second delivery after a crash
            log.warning("central_mark_delivered_failed", error=str(exc))
