"""Retention: accepted events are kept no longer than needed (Vietnam's personal-data decree).

:func:`purge_older_than` deletes events received more than ``days`` ago (``idstation central
purge``); :class:`RetentionLoop` does it every ``interval`` seconds inside a listener
(``central listen --retention-days``). Stream state (highest seq, open gaps) is kept, so an old
frame sent again is still a replay; device state and the audit trail are kept too.
"""

from __future__ import annotations

import threading
import time

import structlog
from idstation.mqtt.central.store import Store, StoreError

log = structlog.get_logger(__name__)

__all__ = ["DEFAULT_RETENTION_DAYS", "RetentionLoop", "purge_older_than"]

DEFAULT_RETENTION_DAYS = 30.0


def purge_older_than(store: Store, days: float, *, now: float | None = None) -> int:
    """Delete events received more than ``days`` days before ``now``; returns how many."""
    if days < 0:
        raise TypeError("days is non-negative")
    before = (now if now is not None else time.time()) - days * 86400.0
    removed = store.purge(before)
    log.info("central_events_purged", removed=removed, older_than_days=days)
    return removed


class RetentionLoop:
    """Purge at start and then every ``interval`` seconds, on its own thread (a failure is logged)."""

    def __init__(self, store: Store, days: float, *, interval: float = 3600.0) -> None:
        self.store, self.days, self.interval = store, days, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="idstation-central-retention", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                purge_older_than(self.store, self.days)
            except StoreError as exc:
                log.warning("central_purge_failed", error=str(exc))
            self.runs += 1
            self._stop.wait(self.interval)
