"""One log line per request (method, path, status, client name, duration): no query, no body.

Paths name sites and counters, never a citizen; bodies and tokens are never logged.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

log = structlog.get_logger("idstation.mqtt.central.service")

__all__ = ["RequestLog"]


class RequestLog:
    """Pure ASGI middleware (streams pass through untouched; logged when the response starts)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_logged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                log.info(
                    "http_request",
                    method=scope["method"],
                    path=scope["path"],
                    status=message["status"],
                    client=state.get("client_name"),
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
            await send(message)

        await self.app(scope, receive, send_logged)
