"""Attach any APDU handler to vsmartcard's vpcd, so that pcscd sees it as a card on a real reader.

Theory of operation (vsmartcard ``vpcd`` protocol): pcscd's vpcd driver listens on TCP (35963 for
"Virtual PCD 00 00", 35964 for "... 00 01"); a virtual card connects to it as a client and the
card is present while the connection lasts. Every message either way is a 2-byte big-endian length
and a payload. A 1-byte payload from vpcd is a control: 00 power off, 01 power on, 02 reset (no
answer), 04 get ATR (answered with the ATR). Any longer payload is a C-APDU, answered with the
R-APDU. Power off, power on and reset call ``handler.reset()`` when the handler has one.

Debian's vpcd writes each message in two ``send()`` calls; with Nagle's algorithm and delayed ACKs
that costs ~40 ms per APDU. We set TCP_NODELAY and re-arm TCP_QUICKACK before every ``recv``.

A handler raising ``CardRemoved`` (the virtual chip's ``remove_after`` fault) closes the connection:
the card vanishes from the reader. ``reinsert_after`` puts the same handler back after a delay
(for "the next card reads normally"), or ``reinsert_handler`` in its place (the same card held
still this time); ``insert``/``remove`` swap cards at any time. While vpcd
is not listening yet (pcscd starting) the bridge retries with bounded exponential backoff.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import structlog
from idstation.hal.errors import CardRemoved, IdstationError
from idstation.hal.ports import ApduHandler

log = structlog.get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
DEFAULT_ATR = bytes.fromhex("3B8880010000000000000000")

CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

_POLL_S = 0.1  # how often a blocked recv looks at insert/remove/stop
_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 1.0
_SW_NO_DIAGNOSIS = b"\x6f\x00"
_SW_WRONG_LENGTH = b"\x67\x00"
MAX_RAPDU = 0xFFFF  # vpcd's 2-byte length: a chip serving vpcd caps its answers at 65533 data bytes


class _Swapped(Exception):
    """Internal: the card was removed or replaced while the connection was open."""


def frame(payload: bytes) -> bytes:
    """One vpcd message: 2-byte big-endian length ‖ payload."""
    if len(payload) > 0xFFFF:
        raise TypeError("vpcd message longer than 65535 bytes")
    return len(payload).to_bytes(2, "big") + payload


class VpcdCard:
    """Answers one vpcd message for one handler (sans-IO: bytes in, bytes or None out)."""

    def __init__(self, handler: ApduHandler, atr: bytes = DEFAULT_ATR) -> None:
        self.handler = handler
        self.atr = bytes(atr)
        self.apdus = 0

    def reset(self) -> None:
        reset = getattr(self.handler, "reset", None)
        if callable(reset):
            reset()

    def answer(self, payload: bytes) -> bytes | None:
        """The reply payload for one message from vpcd, or None when none is due.

        Raises CardRemoved when the handler says the card left the field.
        """
        if len(payload) == 1:
            control = payload[0]
            if control in (CTRL_OFF, CTRL_ON, CTRL_RESET):
                self.reset()
                return None
            if control == CTRL_ATR:
                return self.atr
            log.warning("vpcd_unknown_control", control=control)
            return None
        self.apdus += 1
        try:
            rapdu = self.handler(payload)
        except CardRemoved:
            raise
        except IdstationError as exc:  # a handler bug must not kill the bridge: answer 6F00
            log.warning("vpcd_handler_error", error=type(exc).__name__)
            return _SW_NO_DIAGNOSIS
        if len(rapdu) > MAX_RAPDU:  # vpcd frames carry 65535 bytes: the card says "wrong length" instead
            log.warning("vpcd_response_too_long", size=len(rapdu))
            return _SW_WRONG_LENGTH
        return bytes(rapdu)


class VpcdBridge:
    """Serves a handler (or none: empty reader) to vpcd on a background thread or in the foreground."""

    def __init__(
        self,
        handler: ApduHandler | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        atr: bytes = DEFAULT_ATR,
        reinsert_after: float | None = None,
        reinsert_handler: ApduHandler | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.reinsert_after = reinsert_after
        self.reinsert_handler = reinsert_handler  # the card placed again (default: the same one)
        self._cond = threading.Condition()
        self._card: VpcdCard | None = VpcdCard(handler, atr) if handler is not None else None
        self._generation = 0
        self._stopping = False
        self._connected = False
        self._thread: threading.Thread | None = None
        self.connections = 0  # how many times a card was presented to vpcd

    # --- card slot -------------------------------------------------------------------------
    def insert(self, handler: ApduHandler, atr: bytes = DEFAULT_ATR) -> None:
        """Present ``handler`` as the card (replacing any card being served)."""
        with self._cond:
            self._card = VpcdCard(handler, atr)
            self._generation += 1
            self._cond.notify_all()

    def remove(self) -> None:
        """Take the card away: the connection to vpcd closes and the reader is empty."""
        with self._cond:
            self._card = None
            self._generation += 1
            self._cond.notify_all()

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    def wait_connected(self, value: bool, timeout: float) -> bool:
        """Block until the card is (``value=True``) or is not connected to vpcd; bounded."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._connected != value:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> VpcdBridge:
        if self._thread is not None:
            raise TypeError("bridge already started")
        self._thread = threading.Thread(target=self.serve_forever, name=f"vpcd-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def serve_forever(self) -> None:
        """Connect whenever a card is inserted; return once ``stop()`` was called."""
        backoff = _BACKOFF_MIN_S
        while True:
            with self._cond:
                while self._card is None and not self._stopping:
                    self._cond.wait(_POLL_S * 5)
                if self._stopping:
                    return
                card, generation = self._card, self._generation
            assert card is not None
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError:
                self._sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            backoff = _BACKOFF_MIN_S
            self._serve_connection(sock, card, generation)

    # --- one connection --------------------------------------------------------------------
    def _serve_connection(self, sock: socket.socket, card: VpcdCard, generation: int) -> None:
        _tune(sock)
        with self._cond:
            self._connected = True
            self.connections += 1
            self._cond.notify_all()
        log.info("vpcd_card_connected", port=self.port)
        reason = "closed"
        try:
            reader = _MessageReader(sock, lambda: self._still_current(generation))
            while True:
                payload = reader.next_message()
                if payload is None:
                    reason = "vpcd_closed"
                    break
                reply = card.answer(payload)
                if reply is not None:
                    sock.sendall(frame(reply))
        except CardRemoved:
            reason = "card_removed"
            self._card_pulled(card, generation)
        except _Swapped:
            reason = "swapped"
        except OSError as exc:
            reason = f"socket_{type(exc).__name__}"
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._cond:
                self._connected = False
                self._cond.notify_all()
            log.info("vpcd_card_disconnected", port=self.port, reason=reason)

    def _still_current(self, generation: int) -> bool:
        with self._cond:
            return not self._stopping and self._generation == generation

    def _card_pulled(self, card: VpcdCard, generation: int) -> None:
        with self._cond:
            if self._generation != generation:
                return
            self._card = None
            self._generation += 1
            self._cond.notify_all()
        if self.reinsert_after is not None:
            timer = threading.Timer(self.reinsert_after, self._reinsert, args=(card, self._generation))
            timer.daemon = True
            timer.start()

    def _reinsert(self, card: VpcdCard, generation: int) -> None:
        with self._cond:
            if self._generation != generation or self._stopping:
                return  # somebody inserted or removed a card meanwhile
        handler = self.reinsert_handler or card.handler
        reset = getattr(handler, "reset", None)
        if callable(reset):
            reset()
        self.insert(handler, card.atr)

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            if not self._stopping:
                self._cond.wait(seconds)


class _MessageReader:
    """Reads length-prefixed vpcd messages, polling so that a swap or stop is noticed."""

    def __init__(self, sock: socket.socket, still_current: Callable[[], bool]) -> None:
        self._sock = sock
        self._still_current = still_current
        self._buffer = bytearray()
        sock.settimeout(_POLL_S)

    def next_message(self) -> bytes | None:
        """The next payload; None when vpcd closed the connection."""
        while True:
            if len(self._buffer) >= 2:
                size = int.from_bytes(self._buffer[:2], "big")
                if len(self._buffer) >= 2 + size:
                    payload = bytes(self._buffer[2 : 2 + size])
                    del self._buffer[: 2 + size]
                    return payload
            if not self._still_current():
                raise _Swapped
            _quickack(self._sock)
            try:
                chunk = self._sock.recv(65538)
            except TimeoutError:
                continue
            if not chunk:
                return None
            self._buffer += chunk


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _quickack(sock)


def _quickack(sock: socket.socket) -> None:
    quickack = getattr(socket, "TCP_QUICKACK", None)  # Linux only; re-armed before every recv
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
