"""The box's side of central receipts: which keys it trusts, which receipts it applies.

A receipt (:mod:`idstation.mqtt.receipt`) is applied only when its signature verifies against
one of the box's receipt public keys, it names this device and its current signing key, and it
covers no number the box never took (``upto`` and every ``above`` at most the outbox's last
``seq``). Anything else is ignored, counted by reason and logged (never the payload).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from idstation.mqtt.errors import ReceiptRejected, SealError
from idstation.mqtt.receipt import Receipt, parse_receipt, parse_receipt_keys

if TYPE_CHECKING:
    from idstation.mqtt.outbox import Outbox

log = structlog.get_logger(__name__)

__all__ = ["ReceiptCounters", "ReceiptTracker", "check_receipt", "load_receipt_keys"]


def load_receipt_keys(source: Sequence[Ed25519PublicKey] | Path | str | None) -> list[Ed25519PublicKey] | None:
    """The trusted receipt keys, or None (receipts off: logged) when none are configured or found."""
    if source is None:
        log.info("publisher_receipts_off", why="no receipt keys configured")
        return None
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            keys = parse_receipt_keys(path.read_bytes())
        except FileNotFoundError:
            log.info("publisher_receipts_off", why="no receipt key file", file=path.name)
            return None
        except (OSError, SealError) as exc:
            log.error("publisher_receipts_off", why="unreadable receipt key file", error=str(exc), file=path.name)
            return None
    else:
        keys = list(source)
    if not keys or not all(isinstance(k, Ed25519PublicKey) for k in keys):
        log.info("publisher_receipts_off", why="no Ed25519 receipt key")
        return None
    return keys


def check_receipt(receipt: Receipt, device_id: str, key_id: str, last_seq: int) -> str | None:
    """Why a verified receipt must not be applied by this box, or None."""
    if receipt.device_id != device_id:
        return "other_device"
    if receipt.key_id != key_id:
        return "other_key"
    if receipt.upto > last_seq or any(seq > last_seq for seq in receipt.above):
        return "never_sent"
    return None


class ReceiptCounters:
    """What the box did with the receipts it received (for stats and status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.applied = 0
        self.deleted = 0
        self.last_upto: int | None = None
        self.ignored: collections.Counter[str] = collections.Counter()

    def apply(self, upto: int, deleted: int) -> None:
        with self._lock:
            self.applied += 1
            self.deleted += deleted
            self.last_upto = upto

    def ignore(self, reason: str) -> None:
        with self._lock:
            self.ignored[reason] += 1
        log.warning("receipt_ignored", reason=reason)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "applied": self.applied,
                "events_receipted": self.deleted,
                "last_upto": self.last_upto,
                "ignored": dict(self.ignored),
            }


class ReceiptTracker:
    """The publisher's receipt side: received payloads queued by the MQTT callback, applied to the
    outbox on the connection thread, and the no-receipt alarm's edge (checked every 5 s)."""

    def __init__(self, keys: list[Ed25519PublicKey] | None, topic: str, device_id: str, alarm_s: float) -> None:
        self.keys, self.topic, self.device_id, self.alarm_s = keys, topic, device_id, alarm_s
        self.counters = ReceiptCounters()
        self._inbox: collections.deque[bytes] = collections.deque(maxlen=32)  # only the latest matter
        self._late = False
        self._last_check = 0.0

    @property
    def on(self) -> bool:
        return self.keys is not None

    def offer(self, topic: str, payload: bytes) -> None:
        """From paho's message callback: only queue."""
        if self.on and topic == self.topic:
            self._inbox.append(bytes(payload))

    @property
    def waiting(self) -> bool:
        return bool(self._inbox)

    def apply(self, outbox: Outbox, key_id: str) -> None:
        """Apply queued receipts: a valid one for this device, key and numbers sent deletes what it covers."""
        while self._inbox:
            payload = self._inbox.popleft()
            try:
                receipt = parse_receipt(payload, self.keys or ())
            except ReceiptRejected as exc:
                self.counters.ignore(exc.reason)
                continue
            why = check_receipt(receipt, self.device_id, key_id, outbox.last_seq)
            if why:
                self.counters.ignore(why)
                continue
            deleted = outbox.receipted(receipt.upto, receipt.above)
            self.counters.apply(receipt.upto, deleted)
            log.debug("receipt_applied", upto=receipt.upto, above=len(receipt.above), deleted=deleted)

    def alarm_due(self, outbox: Outbox) -> bool:
        """True once when the oldest event waiting for a receipt passes ``alarm_s`` (rising edge)."""
        now = time.monotonic()
        if not self.on or now - self._last_check < 5.0:
            return False
        self._last_check = now
        oldest = outbox.depth()["oldest_awaiting_s"]
        late = oldest is not None and oldest > self.alarm_s
        rising = late and not self._late
        if self._late and not late:
            log.info("publisher_receipts_resumed")
        self._late = late
        return rising

    def as_dict(self) -> dict[str, Any]:
        return {"on": self.on, **self.counters.as_dict()}
