"""The configuration of the box's :class:`~idstation.mqtt.client.Publisher` (re-exported there) and
the token bucket that holds its backlog lane to a byte rate."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from idstation.mqtt.connection import TlsOptions

__all__ = ["PublisherConfig", "TokenBucket"]


@dataclass
class PublisherConfig:
    """Everything a :class:`~idstation.mqtt.client.Publisher` is built from (docs/mqtt.md)."""

    broker_url: str
    device_id: str
    site: str
    counter: str
    signing_key: Ed25519PrivateKey | Path | str = field(repr=False)
    central_public_key: X25519PublicKey | Path | str = field(repr=False)
    outbox_path: Path | str
    key_id: str | None = None
    tls: TlsOptions | None = None
    protocol: str = "auto"  # "auto" | "5" | "3.1.1"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    inflight: int = 20  # total unacknowledged PUBLISHes
    backlog_inflight: int = 4  # of which at most this many from the backlog
    telemetry_inflight: int = 2
    backlog_rate_bytes: float | None = 16_000.0  # bytes/s the backlog may use (None: no limit)
    live_window_s: float = 30.0  # data events younger than this are LIVE, older ones BACKLOG
    max_bytes: int = 256 * 1024 * 1024
    keepalive: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    refused_retry_s: float = 30.0  # a PUBLISH the broker refused (MQTT 5 reason code) is retried after this
    # The centre's receipt public keys (identity/receipt_keys.pem, or keys). None or a missing file:
    # receipts off, data events leave the outbox at the broker's PUBACK (the old behaviour).
    receipt_keys: Sequence[Ed25519PublicKey] | Path | str | None = field(default=None, repr=False)
    receipt_timeout_s: float = 30.0  # at the broker this long without a receipt: sent again (backlog lane)
    receipt_backoff_max_s: float = 3600.0  # the longest wait between two sends of one event
    receipt_alarm_s: float = 900.0  # an alarm when the oldest event waiting for a receipt is older


class TokenBucket:
    """The byte rate of the backlog lane (``rate`` bytes/s, a burst of one second; None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.tokens = rate or 0.0
        self.stamp = time.monotonic()

    def take(self, amount: int) -> bool:
        if self.rate is None:
            return True
        now = time.monotonic()
        burst = max(self.rate, amount)
        self.tokens = min(burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False
