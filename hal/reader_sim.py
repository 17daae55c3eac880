"""A simulated contactless reader that serves any APDU handler in process.

Theory of operation: the reader has one slot. ``insert(handler)`` places a card (any callable
``C-APDU -> R-APDU``) on it and wakes whoever waits in ``wait_for_card``; ``remove()`` takes it away
and wakes ``wait_for_removal``. A connection handed out by ``wait_for_card`` is bound to the card
that was present then: once that card is removed (or a new one inserted) every ``transmit`` on the
old connection raises ``CardRemoved``, exactly like a PC/SC handle after the card left the field.

A handler that raises ``CardRemoved`` (the virtual chip's ``remove_after`` fault) makes the card
absent, as if pulled. All state sits behind one ``threading.Condition``, so a simulator thread can
drive ``insert``/``remove`` on a schedule while the agent blocks in ``wait_for_card``.

Only the standard library and ``hal`` are imported: the virtual chip is plugged in by the wiring.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import structlog
from idstation.hal.errors import CardRemoved, DeviceError, TransmitError
from idstation.hal.ports import ApduHandler

log = structlog.get_logger(__name__)

DEFAULT_ATR = bytes.fromhex("3B8880010000000000000000")


@dataclass(frozen=True, slots=True)
class _Card:
    """One inserted card: its handler and the reader capabilities it is served with."""

    handler: ApduHandler
    atr: bytes
    extended_length: bool
    max_response: int
    serial: int


class SimConnection:
    """A connection to the card that was on the reader when it was opened."""

    def __init__(self, reader: SimReader, card: _Card) -> None:
        self._reader = reader
        self._card = card
        self._closed = False

    @property
    def atr(self) -> bytes:
        return self._card.atr

    @property
    def extended_length(self) -> bool:
        return self._card.extended_length

    @property
    def max_response(self) -> int:
        return self._card.max_response

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one C-APDU to the handler; CardRemoved once this card has left the reader."""
        if self._closed:
            raise TransmitError("connection is closed")
        return self._reader._transmit(self._card, bytes(apdu))

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"SimConnection(reader={self._reader.name!r}, serial={self._card.serial})"


class SimReader:
    """In-process reader: ``insert``/``remove`` a handler, the agent waits and transmits."""

    def __init__(self, name: str = "Simulated Reader 00") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._card: _Card | None = None
        self._serial = 0
        self._closed = False
        self.controls: list[tuple[int, bytes]] = []  # escape commands received (LED/buzzer)

    @property
    def name(self) -> str:
        return self._name

    @property
    def card_present(self) -> bool:
        with self._cond:
            return self._card is not None

    def insert(
        self,
        handler: ApduHandler,
        atr: bytes = DEFAULT_ATR,
        extended_length: bool = True,
        max_response: int = 65536,
    ) -> None:
        """Place a card on the reader (replacing any card there). Calls ``handler.reset()`` if any."""
        if not callable(handler):
            raise TypeError("handler must be callable: C-APDU bytes -> R-APDU bytes")
        reset = getattr(handler, "reset", None)
        if callable(reset):
            reset()
        with self._cond:
            self._serial += 1
            self._card = _Card(handler, bytes(atr), extended_length, max_response, self._serial)
            self._cond.notify_all()
        log.debug("sim_card_inserted", reader=self._name, serial=self._serial)

    def remove(self) -> None:
        """Take the card away; open connections to it raise CardRemoved from now on."""
        with self._cond:
            if self._card is None:
                return
            self._card = None
            self._cond.notify_all()
        log.debug("sim_card_removed", reader=self._name)

    def wait_for_card(self, timeout: float) -> SimConnection | None:
        """Block up to ``timeout`` seconds for a card; a connection to it, or None."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._card is None:
                self._check_open()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._check_open()
            return SimConnection(self, self._card)

    def wait_for_removal(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until the reader is empty; True when it is."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._card is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._cond.wait(remaining)
            return True

    def control(self, code: int, data: bytes) -> bytes:
        """Escape commands are accepted and recorded (the simulator has no LED or buzzer)."""
        self._check_open()
        with self._cond:
            self.controls.append((code, bytes(data)))
        return b""

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceError("simulated reader is closed")

    def _transmit(self, card: _Card, apdu: bytes) -> tuple[bytes, int]:
        with self._cond:
            if self._card is None or self._card.serial != card.serial:
                raise CardRemoved("card is no longer on the reader")
        try:
            rapdu = card.handler(apdu)
        except CardRemoved:
            self._vanish(card)
            raise
        if len(rapdu) < 2:
            raise TransmitError(f"card answered {len(rapdu)} bytes, no status word")
        return bytes(rapdu[:-2]), int.from_bytes(rapdu[-2:], "big")

    def _vanish(self, card: _Card) -> None:
        with self._cond:
            if self._card is not None and self._card.serial == card.serial:
                self._card = None
                self._cond.notify_all()
        log.info("sim_card_vanished", reader=self._name)

    def __repr__(self) -> str:
        return f"SimReader(name={self._name!r})"
