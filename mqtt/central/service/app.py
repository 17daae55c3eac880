"""The centre's HTTP service: a routes table of small endpoints over the store.

:func:`build_app` takes every dependency (store, registry, central key, clients, clock), so a test
builds one over a temporary store; several instances may serve one store. Personal data leaves
only through the identity endpoints, only to a counter client bound to that counter, and only
after an audit record (client, event id, time, endpoint) is in the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.hal.errors import IdstationError
from idstation.mqtt.central.service import pages, sse
from idstation.mqtt.central.service.auth import FailureLimiter, bearer_token
from idstation.mqtt.central.service.clients import Client, ClientsFile
from idstation.mqtt.central.service.hub import Hub
from idstation.mqtt.central.service.views import STREAM_KINDS, event_object, fleet_object, to_epoch
from idstation.mqtt.enrolment.pairing import valid_name  # the one rule of sites and counters (1-64)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

log = structlog.get_logger(__name__)

__all__ = ["Service", "build_app"]

DAY_S = 24 * 3600
_STATIC = Path(__file__).with_name("static")
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass
class Service:
    """The app's dependencies and settings (``request.app.state.service``)."""

    store: Any
    registry: Any
    central_key: X25519PrivateKey
    clients: ClientsFile
    clock: Callable[[], float] = time.time
    freshness_s: float = 600.0
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    poll_s: float = 0.1
    keepalive_s: float = 15.0
    batch: int = 100
    stream_queue: int = 1000  # events the instance's poller holds per stream before it must catch up itself

    # ---- the blocking parts (run in a worker thread) ------------------------------------------
    def disclose(self, client: Client, endpoint: str, stored: Any, face: bool = False) -> dict[str, Any]:
        """An event's object; for an identity, the audit record is written first."""
        obj = event_object(stored, self.central_key, face=face)
        if stored.kind == "identity":
            self.store.add_audit(client.name, stored.event_id, endpoint, self.clock())
        return obj

    def latest(self, client: Client, where: tuple[str, str, str], face: bool) -> dict[str, Any] | None:
        endpoint, site, counter = where
        since = self.clock() - self.freshness_s
        stored = self.store.latest_event(site, counter, ("identity",), since)
        return None if stored is None else self.disclose(client, endpoint, stored, face)

    def head(self, site: str, counter: str) -> int:
        """The cursor a new stream starts after: the counter's latest event (nothing old is replayed)."""
        stored = self.store.latest_event(site, counter, STREAM_KINDS, 0.0)
        return 0 if stored is None else int(stored.cursor)

    def after(self, client: Client, where: tuple[str, str, str], cursor: int, face: bool) -> list[sse.Outgoing] | None:
        """The next events after ``cursor`` (None: the client was removed, the stream ends)."""
        if not self.clients.still_valid(client):
            return None
        endpoint, site, counter = where
        rows = self.store.events_after(cursor, self.batch, site=site, counter=counter, kinds=STREAM_KINDS)
        return self.outgoing(client, endpoint, rows, face)

    def outgoing(self, client: Client, endpoint: str, rows: list[Any], face: bool) -> list[sse.Outgoing] | None:
        """Stored events as SSE items, each identity audited first (None: the client was removed)."""
        if not self.clients.still_valid(client):
            return None
        out = []
        for stored in rows:
            obj = self.disclose(client, endpoint, stored, face)
            text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            out.append(sse.Outgoing(int(stored.cursor), stored.kind, text))
        return out

    def fleet(self, client: Client) -> list[dict[str, Any]]:
        now = self.clock()
        first_hour = (now // 3600 - 23) * 3600  # 24 whole-hour buckets, the last one the current hour
        states = {str(row["device_id"]): row for row in self.store.device_states()}
        failures = self.store.failure_counts(now - DAY_S)
        hourly = _hourly_by_device(self.store.hourly_counts(first_hour), first_hour)
        devices = []
        for record in sorted(self.registry.devices(), key=lambda r: (r.site, r.counter, r.device_id)):
            if not client.is_operator and (record.site, record.counter) not in client.counters:
                continue
            devices.append(
                fleet_object(
                    record,
                    states.get(record.device_id),
                    failures.get(record.device_id, {}),
                    hourly.get(record.device_id, [0] * 24),
                )
            )
        return devices


def _hourly_by_device(rows: Any, since: float) -> dict[str, list[int]]:
    """The store's hourly counts (rows of device_id, hour, kind, count) as 24 buckets of data events
    per device, oldest first (rows without a device or of telemetry kinds are not counted)."""
    out: dict[str, list[int]] = {}
    for row in rows:
        hour = to_epoch(row.get("hour"))
        if row.get("device_id") is None or hour is None or row.get("kind", "identity") not in STREAM_KINDS:
            continue
        index = int((hour - since) // 3600)
        if 0 <= index < 24:
            out.setdefault(str(row["device_id"]), [0] * 24)[index] += int(row["count"])
    return out


# ---- request helpers -----------------------------------------------------------------------------
def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _authenticate(request: Request) -> Client:
    """The caller's client, or 401 (429 once its address has failed too often)."""
    svc = _service(request)
    address = _address(request)
    wait = svc.limiter.retry_after(address)
    if wait:
        raise HTTPException(429, "too many failed attempts", {"Retry-After": str(max(1, round(wait)))})
    client = svc.clients.authenticate(bearer_token(request.headers))
    if client is None:
        svc.limiter.failed(address)
        log.warning("service_auth_failed", address=address, path=request.url.path)
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
    request.state.client_name = client.name
    return client


async def _counter_reader(request: Request) -> tuple[Client, str, str]:
    """The caller, authenticated and bound to the counter in the path (else 401/403/404)."""
    site, counter = request.path_params["site"], request.path_params["counter"]
    client = await _authenticate(request)
    if not (valid_name(site) and valid_name(counter)):
        raise HTTPException(404, "no such counter")
    if not client.may_read(site, counter):
        raise HTTPException(403, "this client may not read this counter's identities")
    return client, site, counter


def _wants_face(request: Request) -> bool:
    """``?face=1``: identities also carry the face photo (the clerk's page asks for it)."""
    return request.query_params.get("face", "") in ("1", "true")


# ---- endpoints -------------------------------------------------------------------------------------
async def healthz(request: Request) -> Response:
    try:
        await run_in_threadpool(_service(request).store.ping)
    except IdstationError as exc:
        return JSONResponse({"ok": False, "store": "unreachable", "error": type(exc).__name__}, 503)
    return JSONResponse({"ok": True, "store": "reachable"})


async def latest_identity(request: Request) -> Response:
    client, site, counter = await _counter_reader(request)
    where = (request.url.path, site, counter)
    obj = await run_in_threadpool(_service(request).latest, client, where, _wants_face(request))
    if obj is None:
        return JSONResponse({"error": "no identity within the freshness window"}, 404, _NO_STORE)
    return JSONResponse(obj, headers=_NO_STORE)


async def stream(request: Request) -> Response:
    client, site, counter = await _counter_reader(request)
    svc = _service(request)
    resume = request.headers.get("last-event-id", "").strip()
    if resume:
        if not resume.isdigit() or len(resume) > 19:
            raise HTTPException(400, "Last-Event-ID is not a cursor of this stream")
        cursor = int(resume)
    else:
        cursor = await run_in_threadpool(svc.head, site, counter)
    where, face = (request.url.path, site, counter), _wants_face(request)

    async def fetch(after: int) -> list[sse.Outgoing] | None:
        return await run_in_threadpool(svc.after, client, where, after, face)

    async def disclose(rows: list[Any]) -> list[sse.Outgoing] | None:
        return await run_in_threadpool(svc.outgoing, client, where[0], rows, face)

    hub = request.app.state.hub
    if hub is not None:
        body = sse.hub_stream(
            hub, (site, counter), cursor, catch_up=fetch, disclose=disclose, keepalive_s=svc.keepalive_s
        )
    else:
        body = sse.event_stream(fetch, cursor, poll_s=svc.poll_s, keepalive_s=svc.keepalive_s)
    headers = {**_NO_STORE, "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def fleet(request: Request) -> Response:
    client = await _authenticate(request)
    devices = await run_in_threadpool(_service(request).fleet, client)
    return JSONResponse({"devices": devices, "generated_at": _service(request).clock()}, headers=_NO_STORE)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.error("service_store_failed", error=type(exc).__name__, path=request.url.path)
    return JSONResponse({"error": "the service is unavailable"}, 503, headers={"Retry-After": "5"})


def build_app(
    store: Any,
    registry: Any,
    central_key: X25519PrivateKey,
    clients: ClientsFile,
    *,
    clock: Callable[[], float] = time.time,
    **settings: Any,
) -> Starlette:
    """The ASGI app. ``settings``: freshness_s, limiter, poll_s, keepalive_s (see :class:`Service`)."""
    from idstation.mqtt.central.service.logmw import RequestLog

    routes = [
        Route("/healthz", healthz),
        Route("/v1/counters/{site}/{counter}/identities/latest", latest_identity),
        Route("/v1/counters/{site}/{counter}/stream", stream),
        Route("/v1/fleet", fleet),
        Route("/counter/{site}/{counter}", pages.counter_page),
        Route("/fleet", pages.fleet_page),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, IdstationError: _unavailable},
    )
    app.state.service = svc = Service(store, registry, central_key, clients, clock, **settings)
    app.state.hub = Hub(store, svc.poll_s, queue_max=svc.stream_queue) if Hub.supported(store) else None
    app.add_middleware(RequestLog)
    return app
