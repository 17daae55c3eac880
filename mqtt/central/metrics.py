"""Prometheus metrics and a readiness check for a central listener (prometheus-client).

Names follow Prometheus conventions (``_total`` counters, base units: seconds, bytes). Labels
carry only bounded, non-personal values: an event kind, a rejection reason, a verdict. Never a
device's citizen data, never an event id (unbounded), never a topic.

- ``idstation_events_accepted_total{kind}``; ``idstation_events_rejected_total{reason}`` (a
  duplicate is counted there as ``reason="duplicate"`` and also in
  ``idstation_events_duplicate_total``); ``idstation_sequence_gaps_opened_total``,
  ``idstation_sequence_gaps_open`` (open gaps in the store, refreshed at most every 10 s)
- ``idstation_batch_events`` (histogram: events per store transaction),
  ``idstation_store_commit_seconds`` (histogram)
- ``idstation_event_age_seconds`` (histogram: commit time minus the box's ``created_at``, for
  clock-synced boxes: how far behind the centre is), ``idstation_consumer_backlog_messages``
  (messages waiting in the broker's queue, when the transport can tell)
- ``idstation_receipts_published_total``, ``idstation_receipt_lag_seconds`` (histogram: from
  the delivery of a stream's oldest unreceipted event, just after its commit, to the receipt's
  publication)
- ``idstation_chip_verdicts_total{check,verdict}`` (the centre's own chip re-verification,
  ``central listen --csca``: ``check`` is ``passive`` (verified, unknown_csca, signer_expired,
  unverified, failed), ``data_match`` (match, mismatch, not_checked) or ``presence`` (proven,
  not_proven, not_checked); fed by :class:`.chip_check.ChipCheck`'s ``on_verdict``)
- ``idstation_listener_ready`` (1 when the store answers and the broker is connected)
- ``idstation_pipeline_wait_seconds_total{thread,waiting_for}``: where the listener's pipeline
  waits — ``check``/``deliveries`` (the broker is not delivering fast enough), ``check``/``commit``
  (the store is the bottleneck), ``commit``/``check`` (checking is)

:class:`MetricsServer` serves ``/metrics`` and ``/ready`` (200 ``ready`` / 503 with the failing
checks' names) on a loopback address by default.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from idstation.mqtt.errors import EventRejected
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

__all__ = ["ListenerMetrics", "MetricsServer", "parse_listen_address"]

_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_AGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400)
_GAPS_EVERY_S = 10.0

Check = Callable[[], bool]


class ListenerMetrics:
    """One listener's metrics in its own registry (two listeners in one process do not collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.accepted = Counter("idstation_events_accepted", "Events verified and committed", ["kind"], registry=r)
        self.rejected = Counter("idstation_events_rejected", "Events rejected, by reason", ["reason"], registry=r)
        self.duplicates = Counter("idstation_events_duplicate", "Events already held (redeliveries)", registry=r)
        self.gaps_opened = Counter("idstation_sequence_gaps_opened", "Sequence gaps opened", registry=r)
        self.gaps_open = Gauge("idstation_sequence_gaps_open", "Open sequence gaps in the store", registry=r)
        self.batch = Histogram(
            "idstation_batch_events", "Events per store transaction", buckets=_BATCH_BUCKETS, registry=r
        )
        self.commit = Histogram(
            "idstation_store_commit_seconds", "Store transaction time", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.age = Histogram(
            "idstation_event_age_seconds", "Commit time minus the box's created_at", buckets=_AGE_BUCKETS, registry=r
        )
        self.backlog = Gauge("idstation_consumer_backlog_messages", "Messages waiting in the broker", registry=r)
        self.receipts = Counter("idstation_receipts_published", "Receipts handed to the broker", registry=r)
        self.receipt_lag = Histogram(
            "idstation_receipt_lag_seconds", "Commit to receipt publication", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.chip = Counter(
            "idstation_chip_verdicts", "The centre's chip re-verification verdicts", ["check", "verdict"], registry=r
        )
        self.ready = Gauge("idstation_listener_ready", "1 when the store and the broker answer", registry=r)
        self._owed: dict[tuple[str, str], float] = {}  # stream -> when its oldest unreceipted event was delivered
        self._gaps_source: Callable[[], int] | None = None
        self._gaps_at = -_GAPS_EVERY_S
        self._gaps_value = 0.0
        self._lock = threading.Lock()

    # --- hooks for the listener (Intake's on_batch / on_event / on_reject) -----------------------

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch.observe(size)
        self.commit.observe(seconds)

    def on_event(self, event: Any) -> None:
        """An accepted event (:class:`AcceptedEvent`): its kind, its sequence verdict, its age."""
        header = event.header
        self.accepted.labels(kind=str(header.get("kind", "unknown"))).inc()
        if header.get("kind") in ("identity", "read_failed"):
            stream = (str(header.get("device_id")), str(header.get("key_id")))
            with self._lock:
                self._owed.setdefault(stream, time.monotonic())
        observation = getattr(event, "observation", None)
        verdict = getattr(getattr(observation, "verdict", None), "value", None)
        if verdict == "gap":
            self.gaps_opened.inc()
        if header.get("clock_synced"):
            age = _age(header.get("created_at"))
            if age is not None:
                self.age.observe(age)

    def on_reject(self, _topic: str, exc: EventRejected) -> None:
        self.rejected.labels(reason=exc.reason).inc()
        if exc.reason == "duplicate":
            self.duplicates.inc()

    def on_receipt(self, device_id: str, key_id: str, _upto: int = 0, _above: int = 0) -> None:
        """A receipt went out (ReceiptBatcher's ``on_sent``): its lag is measured from the stream's
        oldest event delivered since its previous receipt (the stream ids never become labels)."""
        with self._lock:
            since = self._owed.pop((device_id, key_id), None)
        self.on_receipts(1, None if since is None else time.monotonic() - since)

    def on_receipts(self, count: int, lag_seconds: float | None = None) -> None:
        if count:
            self.receipts.inc(count)
            if lag_seconds is not None:
                self.receipt_lag.observe(max(0.0, lag_seconds))

    def on_chip_verdict(self, check: str, verdict: str) -> None:
        self.chip.labels(check=check, verdict=verdict).inc()

    # --- sources read at scrape time ---------------------------------------------------------------

    def track_open_gaps(self, count: Callable[[], int]) -> None:
        """``count()`` (e.g. ``len(store.gaps())``) is read at most every 10 s, at scrape time."""
        self._gaps_source = count
        self.gaps_open.set_function(self._open_gaps)

    def track_backlog(self, backlog: Callable[[], int | None]) -> None:
        self.backlog.set_function(lambda: float(backlog() or 0))

    def track_waits(self, waited: Mapping[tuple[str, str], float]) -> None:
        """``idstation_pipeline_wait_seconds_total{thread,waiting_for}`` from the Intake's
        ``waited`` (read at scrape time): the check thread waiting for deliveries (the broker) or
        for the commit thread (the store), the commit thread waiting for checked batches."""
        self.registry.register(_WaitCollector(waited))

    def _open_gaps(self) -> float:
        with self._lock:
            now = time.monotonic()
            if self._gaps_source is not None and now - self._gaps_at >= _GAPS_EVERY_S:
                try:
                    self._gaps_value = float(self._gaps_source())
                    self._gaps_at = now
                except Exception as exc:  # a scrape must not fail because the store is down
                    log.warning("central_metrics_gaps_unavailable", error=type(exc).__name__)
            return self._gaps_value

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _WaitCollector(Collector):
    def __init__(self, waited: Mapping[tuple[str, str], float]) -> None:
        self.waited = waited

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "idstation_pipeline_wait_seconds",
            "Seconds a listener thread waited, by what it waited for",
            labels=["thread", "waiting_for"],
        )
        for (thread, waiting_for), seconds in list(self.waited.items()):
            family.add_metric([thread, waiting_for], seconds)
        yield family


def _age(created_at: object) -> float | None:
    if not isinstance(created_at, str):
        return None
    try:
        when = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, time.time() - when.timestamp())


def parse_listen_address(text: str, default_port: int = 9464) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (loopback), ``[::1]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ValueError(f"metrics address {text!r}: expected HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"metrics address {text!r}: port out of range")
    return host, number


class MetricsServer:
    """``/metrics`` (Prometheus text format) and ``/ready`` on a background thread."""

    def __init__(self, metrics: ListenerMetrics, address: tuple[str, int], checks: dict[str, Check]) -> None:
        self.metrics, self.checks = metrics, checks
        metrics.ready.set_function(lambda: 1.0 if not self.failing() else 0.0)
        handler = _handler(self)
        self._server = ThreadingHTTPServer(address, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("central_metrics_serving", host=self.address[0], port=self.address[1])
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def failing(self) -> list[str]:
        """Names of the readiness checks that fail now (a check that raises fails)."""
        failed = []
        for name, check in self.checks.items():
            try:
                ok = check()
            except Exception:  # a readiness probe reports, it does not crash
                ok = False
            if not ok:
                failed.append(name)
        return failed


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, server.metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == "/ready":
                failed = server.failing()
                body = ("ready\n" if not failed else "not ready: " + ", ".join(failed) + "\n").encode()
                self._send(503 if failed else 200, body, "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:  # no access log on stderr
            return

    return Handler
