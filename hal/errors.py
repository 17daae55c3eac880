"""The root of every idstation error, and the hardware layer's own errors.

This module imports nothing of ours, so every package may import it. Messages name what went
wrong, never a citizen's data (no names, ID numbers, MRZ, addresses, data-group bytes).
"""

from __future__ import annotations


class IdstationError(Exception):
    """Root of all domain errors raised by idstation."""


class DeviceError(IdstationError):
    """A hardware device (reader, camera, GPIO) is missing or failed."""


class ReaderUnavailable(DeviceError):
    """No PC/SC service, or no reader matching the configured name."""


class CameraError(DeviceError):
    """The camera could not be opened or stopped delivering frames."""


class CardError(IdstationError):
    """Talking to the card failed."""


class NoCard(CardError):
    """No card was presented within the time allowed."""


class CardRemoved(CardError):
    """The card left the field (or was reset) while a command was in flight."""


class TransmitError(CardError):
    """The reader failed to carry an APDU (not a card status word)."""
