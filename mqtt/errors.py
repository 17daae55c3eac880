"""Errors of the event transport: sealing, the outbox, publishing, the central side."""

from __future__ import annotations

from idstation.hal.errors import IdstationError


class PublishError(IdstationError):
    """An event could not be handed to the outbox or the broker."""


class OutboxFull(PublishError):
    """The outbox reached its byte cap and its policy refused the event."""


class OutboxDiskFull(PublishError):
    """The file system under the outbox is full: the event was refused (nothing stored is lost)."""


class OutboxCorrupt(PublishError):
    """The outbox database failed its integrity check (it is set aside and a new one started)."""


class SealError(IdstationError):
    """An event could not be signed/encrypted, or failed verification/decryption."""


class RegistryError(IdstationError):
    """The device registry could not be read or written (bad id, bad key, unwritable directory)."""


class EventRejected(IdstationError):
    """The central side refused an event (unknown/revoked device, bad signature, wrong topic, replay)."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or reason)


class ReceiptRejected(SealError):
    """A receipt was refused by the box: ``reason`` is ``malformed``, ``unknown_key``, ``bad_signature``
    or ``bad_header`` (see :mod:`idstation.mqtt.receipt`)."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or reason)


class StoreError(IdstationError):
    """The central store failed (a bad store URL, a schema it cannot use, a failed statement)."""


class StoreUnavailable(StoreError):
    """The central store cannot be reached now (database down, locked or timed out): retry later."""
