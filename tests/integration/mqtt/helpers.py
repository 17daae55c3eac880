"""Helpers for the transport's integration tests: a collecting listener, a publisher, bounded waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from idstation.mqtt.central.listener import AcceptedEvent, CentralListener
from idstation.mqtt.client import Publisher, PublisherConfig
from idstation.mqtt.errors import EventRejected

CITIZEN = {
    "id_number": "079203004512",
    "full_name": "Trần Thị Hoàng Yến",
    "date_of_birth": "12/03/2003",
    "permanent_address": "Phường Bến Thành, Quận 1, TP Hồ Chí Minh",
}
PRIVATE = {"source": "chip", "citizen": CITIZEN, "verification": {"passive_auth": "valid"}}
SECRETS = [v.encode() for v in CITIZEN.values()]


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Collector:
    """Runs a CentralListener and records what it accepts and rejects."""

    def __init__(self, url: str, registry: Any, key_path: Path, state: Path, **options: Any) -> None:
        self.events: list[AcceptedEvent] = []
        self.rejected: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.listener = CentralListener(
            url, registry, key_path, on_event=self._event, on_reject=self._reject, state_path=state, **options
        )

    def _event(self, event: AcceptedEvent) -> None:
        with self._lock:
            self.events.append(event)

    def _reject(self, topic: str, exc: EventRejected) -> None:
        with self._lock:
            self.rejected.append((topic, exc.reason))

    def ids(self) -> list[str]:
        with self._lock:
            return [e.event_id for e in self.events]

    def reasons(self) -> list[str]:
        with self._lock:
            return [r for _, r in self.rejected]

    def __enter__(self) -> Collector:
        self.listener.start()
        assert self.listener.wait_ready(10), "the listener did not subscribe"
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.stop()


def make_publisher(url: str, device: Any, central_public: Any, outbox: Path, **options: Any) -> Publisher:
    rec = device.record
    config = PublisherConfig(
        broker_url=url,
        device_id=rec.device_id,
        site=rec.site,
        counter=rec.counter,
        signing_key=device.key,
        central_public_key=central_public,
        outbox_path=outbox,
        reconnect_min_s=0.1,
        reconnect_max_s=1.0,
        **options,
    )
    return Publisher(config)
