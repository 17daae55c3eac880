"""The agent's errors: card protocol, parsing, verification, configuration.

Messages name what went wrong (a status word, a tag, a field number), never citizen data.
"""

from __future__ import annotations

from idstation.hal.errors import (
    CardError,
    CardRemoved,
    DeviceError,
    IdstationError,
    NoCard,
    TransmitError,
)

__all__ = [
    "AccessDenied",
    "ApduError",
    "CardError",
    "CardRemoved",
    "ConfigError",
    "DeviceError",
    "FileTooLarge",
    "IdstationError",
    "MrzError",
    "NoCard",
    "ParseError",
    "QrError",
    "SecureMessagingError",
    "TlvError",
    "TransmitError",
    "VerificationError",
]


class ApduError(CardError):
    """The card answered with an unexpected status word."""

    def __init__(self, sw: int, context: str = "") -> None:
        self.sw = sw
        where = f" during {context}" if context else ""
        super().__init__(f"card answered SW {sw:04X}{where}")


class FileTooLarge(CardError):
    """A chip file's TLV header claims more bytes than the LDS allows for that file (hostile chip)."""


class AccessDenied(CardError):
    """No access key opened the chip (PACE and BAC refused every candidate)."""


class SecureMessagingError(CardError):
    """A secure-messaging response failed its MAC or was malformed: the read is aborted."""


class ParseError(IdstationError, ValueError):
    """Bytes or text did not have the expected structure."""


class TlvError(ParseError):
    """BER-TLV structure is malformed."""


class MrzError(ParseError):
    """MRZ text is malformed or a check digit is wrong."""


class QrError(ParseError):
    """A QR payload is not a citizen-card payload (or is truncated)."""


class VerificationError(IdstationError):
    """A trust check could not be carried out (not: a check that ran and failed)."""


class ConfigError(IdstationError):
    """Configuration is invalid; the message names the key and why."""
