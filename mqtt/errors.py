"""Errors of the event transport: sealing, the outbox, publishing, the central side."""

from __future__ import annotations

from idstation.hal.errors import IdstationError


class PublishError(IdstationError):
    """An event could not be handed to the outbox or the broker."""


class OutboxFull(PublishError):
    """The outbox reached its byte cap and its policy refused the event."""


class OutboxCorrupt(PublishError):
    """The outbox database failed its integrity check (it is set aside and a new one started)."""


class SealError(IdstationError):
    """An event could not be signed/encrypted, or failed verification/decryption."""
