"""Delivery marks by batch: which events a listener handed on (stdout, ``on_event``).

Theory of operation. Every :meth:`Store.record` call is one *batch* with a random 62-bit id,
stored in each of its event rows (``events.batch``). The store remembers, per batch it recorded
(the last :data:`OPEN_LIMIT`), the cursors it accepted. :meth:`Store.mark_delivered` then splits
the cursors it is given: every remembered batch whose accepted cursors are all among them is
marked whole, with one small row in ``delivered_batches``; any other cursor (an event delivered
again after a crash, recorded by another listener; a batch only partly delivered; one forgotten)
gets its own ``events.delivered`` flag. A held event counts as delivered when either says so
(:data:`DELIVERED`).

Rewriting each event row to set its flag cost, on PostgreSQL, about as much server CPU and WAL as
inserting it (rows of ~1 KB; measured with bench/store_record.py's events); a batch row costs
nearly nothing.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable

from idstation.mqtt.central.store.base import Outcome

__all__ = ["DELIVERED", "OPEN_LIMIT", "Deliveries"]

OPEN_LIMIT = 1024  # batches remembered until they are marked; older ones are marked row by row
# the held-event column: delivered by its own flag or by its batch (both backends)
DELIVERED = "(delivered OR EXISTS (SELECT 1 FROM delivered_batches b WHERE b.batch = events.batch))"


class Deliveries:
    """The batches one store instance recorded and not yet marked delivered. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[int, frozenset[int]] = OrderedDict()

    @staticmethod
    def new_batch() -> int:
        return secrets.randbits(62) + 1

    def recorded(self, batch: int, outcomes: Iterable[Outcome]) -> None:
        """The batch committed: remember the cursors it accepted (new rows of this batch)."""
        own = frozenset(o.cursor for o in outcomes if o.accepted and o.cursor is not None)
        if not own:
            return
        with self._lock:
            self._open[batch] = own
            while len(self._open) > OPEN_LIMIT:
                self._open.popitem(last=False)  # never marked: its events are marked one by one, if ever

    def split(self, cursors: Iterable[int]) -> tuple[list[int], list[int]]:
        """``(batches delivered whole, the other cursors)`` for :meth:`Store.mark_delivered`."""
        rest = set(cursors)
        whole: list[int] = []
        with self._lock:
            for batch, own in list(self._open.items()):
                if own <= rest:
                    whole.append(batch)
                    rest -= own
                    del self._open[batch]
        return whole, sorted(rest)
