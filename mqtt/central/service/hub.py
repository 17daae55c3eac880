"""One store poller per service instance, fanned out to every open stream of that instance.

Without it each open stream would query the store every poll interval (1,000 clerk pages: 10,000
queries a second). The hub asks ``events_after(cursor, kinds=identity/read_failed)`` once per
interval for all counters and hands each new event to the subscriptions of its counter. A
subscription's queue is bounded; a stream that falls behind is marked ``overflowed`` and catches
up from the store by itself (by cursor, so nothing is lost or repeated). The hub runs only while
someone subscribes. It needs the store's ``head()`` (the highest cursor committed); a store
without it leaves every stream to poll for itself (:func:`.sse.event_stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import structlog
from idstation.hal.errors import IdstationError
from idstation.mqtt.central.service.views import STREAM_KINDS
from starlette.concurrency import run_in_threadpool

log = structlog.get_logger(__name__)

__all__ = ["Hub", "Subscription"]

QUEUE_MAX = 1000


@dataclass(eq=False)
class Subscription:
    site: str
    counter: str
    floor: int  # the hub delivers events after this cursor; the stream catches up to it itself
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    overflowed: bool = False

    def put(self, stored: Any) -> None:
        try:
            self.queue.put_nowait(stored)
        except asyncio.QueueFull:
            self.overflowed = True

    def drain(self) -> list[Any]:
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items


class Hub:
    """Polls the store for the whole instance; :meth:`subscribe` per open stream."""

    def __init__(self, store: Any, poll_s: float = 0.1, batch: int = 500, queue_max: int = QUEUE_MAX) -> None:
        self.store, self.poll_s, self.batch, self.queue_max = store, poll_s, batch, queue_max
        self._subs: dict[tuple[str, str], set[Subscription]] = {}
        self._cursor: int | None = None
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def supported(store: Any) -> bool:
        return callable(getattr(store, "head", None))

    async def subscribe(self, site: str, counter: str) -> Subscription:
        if self._task is None or self._task.done():
            self._cursor = int(await run_in_threadpool(self.store.head))
            self._task = asyncio.get_running_loop().create_task(self._run(), name="idstation-stream-hub")
        assert self._cursor is not None
        sub = Subscription(site, counter, self._cursor, asyncio.Queue(self.queue_max))
        self._subs.setdefault((site, counter), set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get((sub.site, sub.counter))
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[(sub.site, sub.counter)]

    async def _run(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while self._subs:
                rows = await self._poll()
                for stored in rows:
                    self._cursor = int(stored.cursor)
                    for sub in self._subs.get((stored.site, stored.counter), ()):
                        sub.put(stored)
                if len(rows) < self.batch:
                    await asyncio.sleep(self.poll_s)

    async def _poll(self) -> list[Any]:
        try:
            return list(await run_in_threadpool(self.store.events_after, self._cursor, self.batch, kinds=STREAM_KINDS))
        except IdstationError as exc:  # the store is down: streams stay open and wait
            log.warning("service_hub_poll_failed", error=type(exc).__name__)
            await asyncio.sleep(1.0)
            return []
