"""The PC/SC reader port on pyscard's low-level API (``smartcard.scard``).

Theory of operation: a ``PcscReader`` holds one PC/SC context. ``wait_for_card`` watches the
readers whose name contains the configured substring (or every reader, when none is configured)
with ``SCardGetStatusChange`` until one holds a responsive card, then connects to it (shared,
T=1 or T=0). ``transmit`` answers ``(data, sw)`` and collects 61xx GET RESPONSE chains itself.
PC/SC return codes are mapped to our errors at this edge (``error_for_hresult`` and
``map_exceptions``): a card that left the field or was reset is ``CardRemoved``; no service or no
reader is ``ReaderUnavailable``. pyscard is imported lazily (it is absent off the Pi and in CI
images without pcsc-lite): nothing here imports it at module level, and its absence is
``ReaderUnavailable`` with the install hint (the ``pcsc`` extra, or Debian's ``python3-pyscard``).

Everything that can be, is plain logic outside the adapter: the hresult map, the IOCTL code and
the GET RESPONSE loop are pure functions over an injected ``transmit``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from idstation.hal.errors import (
    CardError,
    CardRemoved,
    DeviceError,
    IdstationError,
    NoCard,
    ReaderUnavailable,
    TransmitError,
)

log = structlog.get_logger(__name__)

# PC/SC return codes (pcsc-lite pcsclite.h, Windows winscard.h).
SCARD_S_SUCCESS = 0x00000000
SCARD_E_CANCELLED = 0x80100002
SCARD_E_INVALID_HANDLE = 0x80100003
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_F_COMM_ERROR = 0x80100013
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_SERVICE_STOPPED = 0x8010001E
SCARD_E_UNSUPPORTED_FEATURE = 0x8010001F
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_E_COMM_DATA_LOST = 0x8010002F
SCARD_W_UNRESPONSIVE_CARD = 0x80100066
SCARD_W_UNPOWERED_CARD = 0x80100067
SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069

_REMOVED = frozenset(
    {SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD, SCARD_E_NO_SMARTCARD, SCARD_W_UNPOWERED_CARD, SCARD_E_INVALID_HANDLE}
)
_UNAVAILABLE = frozenset(
    {
        SCARD_E_NO_SERVICE,
        SCARD_E_SERVICE_STOPPED,
        SCARD_E_NO_READERS_AVAILABLE,
        SCARD_E_UNKNOWN_READER,
        SCARD_E_READER_UNAVAILABLE,
    }
)

_CONTEXT_GONE = frozenset({SCARD_E_INVALID_HANDLE, SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED})

STATE_CHANGED = 0x0002
STATE_UNAVAILABLE = 0x0008
STATE_EMPTY = 0x0010
STATE_PRESENT = 0x0020
STATE_MUTE = 0x0200

_MAX_GET_RESPONSE = 256  # bound on 61xx chains (64 KiB / 256 bytes per GET RESPONSE)
_SLICE_MS = 500  # re-list readers this often while waiting (a reader may appear)
_REMOVAL_GRACE_S = 1.0  # how long a failed transmit waits for PC/SC to report a removal
_STATUS_PRESENT = 0x0004  # SCardStatus dwState SCARD_PRESENT (pcsc-lite)


def ioctl_code(code: int) -> int:
    """pcsc-lite's SCARD_CTL_CODE: 0x42000000 + code (reader.h)."""
    if not 0 <= code < 0x01000000:
        raise TypeError(f"control code {code} out of range")
    return 0x42000000 + code


def error_for_hresult(hresult: int, context: str) -> IdstationError:
    """Our error for a failed PC/SC call (the message names the call and the code only)."""
    code = hresult & 0xFFFFFFFF
    where = f"{context}: PC/SC 0x{code:08X}"
    if code in _REMOVED:
        return CardRemoved(f"card left the reader ({where})")
    if code in _UNAVAILABLE:
        return ReaderUnavailable(f"no PC/SC service or reader ({where})")
    if code == SCARD_E_TIMEOUT:
        return NoCard(f"no card in time ({where})")
    if code == SCARD_E_UNSUPPORTED_FEATURE:
        return DeviceError(f"reader does not support this ({where})")
    if code == SCARD_W_UNRESPONSIVE_CARD:
        return CardError(f"card does not answer ({where})")
    return TransmitError(f"reader failed ({where})")


PYSCARD_HINT = (
    "PC/SC readers need pyscard, which is not installed: pip install 'idstation[pcsc]' (it compiles against "
    "libpcsclite-dev and swig), or on Raspberry Pi OS / Debian: sudo apt install python3-pyscard "
    "(a virtual environment then needs --system-site-packages)"
)


def _scard() -> Any:
    """pyscard's low-level module; ``ReaderUnavailable`` with the install hint when it is missing."""
    try:
        from smartcard import scard
    except ImportError:
        raise ReaderUnavailable(PYSCARD_HINT) from None
    return scard


def check(hresult: int, context: str) -> None:
    if hresult & 0xFFFFFFFF != SCARD_S_SUCCESS:
        raise error_for_hresult(hresult, context)


@contextlib.contextmanager
def map_exceptions(context: str) -> Iterator[None]:
    """Turn pyscard's own exceptions into ours (those with an ``hresult`` keep its meaning)."""
    try:
        yield
    except IdstationError:
        raise
    except Exception as exc:  # pyscard raises SWIG errors and its own exception classes
        hresult = getattr(exc, "hresult", None)
        if isinstance(hresult, int):
            raise error_for_hresult(hresult, context) from exc
        if type(exc).__module__.startswith("smartcard"):
            raise TransmitError(f"{context}: {type(exc).__name__}") from exc
        raise


def transmit_collecting(raw: Callable[[bytes], bytes], apdu: bytes) -> tuple[bytes, int]:
    """Send ``apdu`` through ``raw`` (C-APDU → R-APDU); follow 61xx with GET RESPONSE (ISO 7816-4 §7.6.1)."""
    rapdu = raw(apdu)
    data = bytearray()
    for _ in range(_MAX_GET_RESPONSE):
        if len(rapdu) < 2:
            raise TransmitError(f"reader returned {len(rapdu)} bytes, no status word")
        data += rapdu[:-2]
        sw = int.from_bytes(rapdu[-2:], "big")
        if sw & 0xFF00 != 0x6100:
            return bytes(data), sw
        cla = apdu[0] & 0x03 if apdu else 0  # keep the logical channel, drop SM bits
        rapdu = raw(bytes((cla, 0xC0, 0x00, 0x00, sw & 0xFF)))
    raise TransmitError("GET RESPONSE chain did not end")


def _pick(readers: list[str], wanted: str | None) -> list[str]:
    if wanted is None:
        return list(readers)
    return [r for r in readers if wanted.lower() in r.lower()]


class PcscConnection:
    """One connected card (SCardConnect handle)."""

    def __init__(
        self, reader: PcscReader, hcard: Any, protocol: int, *, atr: bytes, extended_length: bool, max_response: int
    ) -> None:
        self._reader = reader
        self._hcard = hcard
        self._protocol = protocol
        self._atr = atr
        self._extended_length = extended_length
        self._max_response = max_response
        self._closed = False

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def extended_length(self) -> bool:
        return self._extended_length

    @property
    def max_response(self) -> int:
        return self._max_response

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if self._closed:
            raise TransmitError("connection is closed")
        return transmit_collecting(self._raw, bytes(apdu))

    def _raw(self, apdu: bytes) -> bytes:
        scard = _scard()
        with map_exceptions("SCardTransmit"):
            hresult, response = scard.SCardTransmit(self._hcard, self._protocol, list(apdu))
        if hresult & 0xFFFFFFFF != SCARD_S_SUCCESS or len(response) < 2:
            raise self._diagnose(hresult)
        return bytes(response)

    def _diagnose(self, hresult: int) -> IdstationError:
        """Why a transmit failed: CardRemoved when the card left (pcscd may notice it a little late).

        vpcd and some readers answer 'not transacted' (or nothing) first and only report the
        removal at their next presence poll, so the card status is polled for a bounded moment.
        """
        if hresult & 0xFFFFFFFF == SCARD_S_SUCCESS:  # no status word at all: the card stopped answering
            return CardRemoved("card gave no answer (left the field)")
        error = error_for_hresult(hresult, "SCardTransmit")
        if isinstance(error, CardRemoved):
            return error
        scard = _scard()
        deadline = time.monotonic() + _REMOVAL_GRACE_S
        while True:
            try:
                status_hr, _name, state, _proto, _atr = scard.SCardStatus(self._hcard)
            except Exception:  # pyscard raising here means the handle is gone
                return CardRemoved("card left the reader (SCardStatus failed)")
            if status_hr & 0xFFFFFFFF in _REMOVED or not state & _STATUS_PRESENT:
                return CardRemoved(f"card left the reader (SCardTransmit: PC/SC 0x{hresult & 0xFFFFFFFF:08X})")
            if time.monotonic() >= deadline:
                return error
            time.sleep(0.05)

    def control(self, code: int, data: bytes) -> bytes:
        scard = _scard()
        with map_exceptions("SCardControl"):
            hresult, response = scard.SCardControl(self._hcard, ioctl_code(code), list(data))
        check(hresult, "SCardControl")
        return bytes(response)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        scard = _scard()
        with contextlib.suppress(Exception):
            scard.SCardDisconnect(self._hcard, scard.SCARD_RESET_CARD)  # drop any SM session

    def __repr__(self) -> str:
        return f"PcscConnection(reader={self._reader.name!r})"


class PcscReader:
    """A PC/SC reader chosen by name substring, or the first reader that holds a card."""

    def __init__(self, name: str | None = None, *, extended_length: bool = True, max_response: int = 65536) -> None:
        self._wanted = name or None
        self._current: str | None = None
        self._extended_length = extended_length
        self._max_response = max_response
        self._context: Any = None

    @property
    def name(self) -> str:
        return self._current or self._wanted or "pcsc:any"

    def _ctx(self) -> Any:
        if self._context is None:
            scard = _scard()
            with map_exceptions("SCardEstablishContext"):
                hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            check(hresult, "SCardEstablishContext")
            self._context = context
        return self._context

    def _check_context(self, hresult: int, what: str) -> None:
        """Like ``check``; a dead context (pcscd restarted) is dropped, so the next call makes a new one."""
        code = hresult & 0xFFFFFFFF
        if code in _CONTEXT_GONE:
            self.close()
            raise ReaderUnavailable(f"PC/SC service went away ({what}: PC/SC 0x{code:08X})")
        check(hresult, what)

    def readers(self) -> list[str]:
        """Names of the readers PC/SC knows now ([] when none)."""
        scard = _scard()
        context = self._ctx()
        with map_exceptions("SCardListReaders"):
            hresult, readers = scard.SCardListReaders(context, [])
        if hresult & 0xFFFFFFFF == SCARD_E_NO_READERS_AVAILABLE:
            return []
        self._check_context(hresult, "SCardListReaders")
        return list(readers)

    def _watch(self, deadline: float, done: Callable[[int], bool]) -> str | None:
        """Wait until a matching reader's state satisfies ``done``; its name, or None at the deadline."""
        scard = _scard()
        context = self._ctx()
        known: dict[str, int] = {}
        while True:
            names = _pick(self.readers(), self._wanted)
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if names:
                wait_ms = 0 if any(n not in known for n in names) else min(remaining_ms, _SLICE_MS)
                with map_exceptions("SCardGetStatusChange"):
                    hresult, new = scard.SCardGetStatusChange(context, wait_ms, [(n, known.get(n, 0)) for n in names])
                code = hresult & 0xFFFFFFFF
                if code == SCARD_S_SUCCESS:
                    for reader, event, _atr in new:
                        known[reader] = event & ~STATE_CHANGED
                        if done(event):
                            return reader
                elif code != SCARD_E_TIMEOUT:
                    self._check_context(hresult, "SCardGetStatusChange")
            else:
                time.sleep(min(remaining_ms, _SLICE_MS) / 1000)
            if time.monotonic() >= deadline:
                return None

    def wait_for_card(self, timeout: float) -> PcscConnection | None:
        """Block up to ``timeout`` s for a responsive card on a matching reader; connect to it."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            reader = self._watch(deadline, lambda s: bool(s & STATE_PRESENT) and not s & STATE_MUTE)
            if reader is None:
                return None
            try:
                return self._connect(reader)
            except CardRemoved:  # pulled between the event and the connect: wait again
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.05)

    def _connect(self, reader: str) -> PcscConnection:
        scard = _scard()
        context = self._ctx()
        with map_exceptions("SCardConnect"):
            hresult, hcard, protocol = scard.SCardConnect(
                context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1 | scard.SCARD_PROTOCOL_T0
            )
        self._check_context(hresult, "SCardConnect")
        with map_exceptions("SCardStatus"):
            status = scard.SCardStatus(hcard)
        atr = bytes(status[4]) if status[0] & 0xFFFFFFFF == SCARD_S_SUCCESS else b""
        self._current = reader
        log.info("pcsc_card_connected", reader=reader, protocol=protocol)
        return PcscConnection(
            self, hcard, protocol, atr=atr, extended_length=self._extended_length, max_response=self._max_response
        )

    def wait_for_presence(self, timeout: float) -> bool:
        """Block up to ``timeout`` s until a matching reader holds a card, without connecting."""
        deadline = time.monotonic() + max(0.0, timeout)
        return self._watch(deadline, lambda s: bool(s & STATE_PRESENT)) is not None

    def wait_for_removal(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        wanted = self._wanted
        if self._current is not None:
            self._wanted = self._current
        try:
            return self._watch(deadline, lambda s: bool(s & STATE_EMPTY)) is not None
        finally:
            self._wanted = wanted

    def control(self, code: int, data: bytes) -> bytes:
        """Escape command through a direct connection (works with or without a card)."""
        scard = _scard()
        names = _pick(self.readers(), self._current or self._wanted)
        if not names:
            raise ReaderUnavailable("no matching reader for a control command")
        with map_exceptions("SCardConnect"):
            hresult, hcard, _protocol = scard.SCardConnect(self._ctx(), names[0], scard.SCARD_SHARE_DIRECT, 0)
        self._check_context(hresult, "SCardConnect")
        try:
            with map_exceptions("SCardControl"):
                hresult, response = scard.SCardControl(hcard, ioctl_code(code), list(data))
            check(hresult, "SCardControl")
            return bytes(response)
        finally:
            with contextlib.suppress(Exception):
                scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)

    def close(self) -> None:
        if self._context is None:
            return
        scard = _scard()
        with contextlib.suppress(Exception):
            scard.SCardReleaseContext(self._context)
        self._context = None

    def __repr__(self) -> str:
        return f"PcscReader(name={self.name!r})"
