"""The box's side of central receipts: which keys it trusts, which receipts it applies.

A receipt (:mod:`idstation.mqtt.receipt`) is applied only when its signature verifies against
one of the box's receipt public keys, it names this device and its current signing key, and it
covers no number the box never took (``upto`` and every ``above`` at most the outbox's last
``seq``). Anything else is ignored, counted by reason and logged (never the payload).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from idstation.mqtt.errors import SealError
from idstation.mqtt.receipt import Receipt, parse_receipt_keys

log = structlog.get_logger(__name__)

__all__ = ["ReceiptCounters", "check_receipt", "load_receipt_keys"]


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
