"""Ports: the small interfaces the rest of idstation uses to reach hardware.

Each port has a real implementation (pyscard, picamera2, V4L2, GPIO) and a simulated one chosen
by configuration. Nothing here imports a hardware library.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

# An APDU handler: command APDU bytes in, response APDU bytes (data + SW1 SW2) out.
# The virtual chip is one; the simulated reader takes any.
ApduHandler = Callable[[bytes], bytes]


@runtime_checkable
class CardConnection(Protocol):
    """One powered card in one reader."""

    @property
    def atr(self) -> bytes: ...

    @property
    def extended_length(self) -> bool:
        """True when the reader carries extended-length APDUs (ISO 7816-4 §5.1)."""
        ...

    @property
    def max_response(self) -> int:
        """Largest response data the reader can carry in one R-APDU (e.g. 256 or 65536)."""
        ...

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one C-APDU; return (response data, SW1SW2 as int).

        Raises CardRemoved when the card left the field, TransmitError for reader faults.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class CardReader(Protocol):
    """A contactless reader that cards are placed on."""

    @property
    def name(self) -> str: ...

    def wait_for_card(self, timeout: float) -> CardConnection | None:
        """Block up to ``timeout`` seconds for a card; return a connection or None."""
        ...

    def wait_for_removal(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until no card is present; True when removed."""
        ...

    def control(self, code: int, data: bytes) -> bytes:
        """Reader escape/control command (LED, buzzer); DeviceError when unsupported."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera frame in grayscale.

    ``gray`` is the low-resolution (preview) luminance plane; ``full`` is the full-resolution
    plane when the source has one (picamera2 main stream), else None. Arrays are uint8 HxW.
    """

    gray: np.ndarray
    timestamp: float
    seq: int
    full: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Camera(Protocol):
    """A source of grayscale frames."""

    def start(self) -> None: ...

    def read(self, timeout: float) -> Frame | None:
        """Next new frame, or None on timeout. CameraError when the camera died."""
        ...

    def stop(self) -> None: ...


class Signal(enum.StrEnum):
    """What the clerk should see/hear."""

    IDLE = "idle"
    BUSY = "busy"  # card seen, reading
    OK = "ok"  # read and verified, event queued
    WARN = "warn"  # needs the clerk: show the QR side, card unknown CSCA
    ERROR = "error"  # read failed


@runtime_checkable
class Indicator(Protocol):
    """LED / buzzer / console line feedback."""

    def signal(self, signal: Signal, message: str = "") -> None: ...
