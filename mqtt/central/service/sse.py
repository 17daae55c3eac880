"""Server-sent events: the wire format and the polling loop behind ``.../stream``.

Each accepted event goes out as ``id: CURSOR`` (the store's commit-order cursor), ``event: KIND``
and ``data: JSON line``. A client that reconnects sends the last id it saw as ``Last-Event-ID``
and the loop resumes strictly after it: nothing lost (the cursor orders commits) and nothing
repeated (strictly after). The loop polls the store every ``poll_s`` (a cheap indexed query) and
sends a comment line every ``keepalive_s`` so proxies and the browser keep an idle stream open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idstation.mqtt.central.service.hub import Hub

__all__ = ["Outgoing", "comment", "event_stream", "format_event", "hub_stream"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event ready to send: its cursor, SSE event name and JSON text (a single line)."""

    cursor: int
    event: str
    data: str


def format_event(item: Outgoing) -> bytes:
    if "\n" in item.data or "\r" in item.data:
        raise TypeError("SSE data must be one line (a compact JSON text)")
    return f"id: {item.cursor}\nevent: {item.event}\ndata: {item.data}\n\n".encode()


def comment(text: str = "") -> bytes:
    return f": {text}\n\n".encode()


async def event_stream(
    fetch_after: Callable[[int], Awaitable[list[Outgoing] | None]],
    cursor: int,
    *,
    poll_s: float = 0.1,
    keepalive_s: float = 15.0,
    retry_ms: int = 1000,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[bytes]:
    """Yield SSE bytes for every event after ``cursor`` until the client goes away (or ``fetch_after``
    answers None: the client lost its right to the stream)."""
    yield f"retry: {retry_ms}\n".encode() + comment("stream open")
    last_sent = clock()
    while True:
        batch = await fetch_after(cursor)
        if batch is None:
            return
        for item in batch:
            cursor = item.cursor
            yield format_event(item)
            last_sent = clock()
        if batch:
            continue  # more may be waiting: fetch again at once
        if clock() - last_sent >= keepalive_s:
            yield comment("keep-alive")
            last_sent = clock()
        await asyncio.sleep(poll_s)


async def hub_stream(
    hub: Hub,
    where: tuple[str, str],
    cursor: int,
    *,
    catch_up: Callable[[int], Awaitable[list[Outgoing] | None]],
    disclose: Callable[[list[Any]], Awaitable[list[Outgoing] | None]],
    keepalive_s: float = 15.0,
    retry_ms: int = 1000,
) -> AsyncIterator[bytes]:
    """Like :func:`event_stream`, fed by the instance's :class:`~.hub.Hub` instead of its own polls.

    After subscribing, the stream reads the store by itself from ``cursor`` up to the present
    (which covers everything up to the hub's starting point), then takes the hub's events, skipping
    any it already sent (cursor order). ``catch_up`` and ``disclose`` answer None when the client
    lost its right to the stream.
    """
    yield f"retry: {retry_ms}\n".encode() + comment("stream open")
    sub = await hub.subscribe(*where)
    try:
        last = cursor
        while True:
            sub.overflowed = False
            sub.drain()
            while (batch := await catch_up(last)) is not None:
                for item in batch:
                    last = item.cursor
                    yield format_event(item)
                if not batch:
                    break
            if batch is None:
                return
            while not sub.overflowed:
                try:
                    first = await asyncio.wait_for(sub.queue.get(), keepalive_s)
                except TimeoutError:
                    if await disclose([]) is None:
                        return
                    yield comment("keep-alive")
                    continue
                rows = [r for r in (first, *sub.drain()) if int(r.cursor) > last]
                out = await disclose(rows) if rows else []
                if out is None:
                    return
                for item in out:
                    last = item.cursor
                    yield format_event(item)
    finally:
        hub.unsubscribe(sub)
