"""ChipSession: access control and file reading over one card connection (ICAO 9303-10/-11).

Public API (what the read orchestration uses)::

    session = ChipSession(conn.transmit, extended_length=conn.extended_length,
                          max_response=conn.max_response)          # or ChipSession.over(handler)
    session.card_access            -> bytes | None   EF.CardAccess, read unprotected by open()
    session.open([CanKey(..), MrzKey(..), ...]) -> "PACE-CAN" | "PACE-MRZ" | "BAC"
    session.read_file(0x011E)      -> bytes           whole file, TLV-sized
    session.internal_authenticate(challenge) -> bytes (AA signature; verify with active_auth)
    session.chip_authenticate(dg14 bytes | SecurityInfos) -> ChipAuthResult ("ok"|"failed"|"not_supported")
    session.apdus, session.bytes_sent, session.bytes_received   wire counters
    session.method                 -> the access method that worked, or None

Errors: ``AccessDenied`` (no candidate opened the chip), ``ApduError(sw)`` (e.g. 6982 for DG3,
6A82 for an absent file; ``SmDropped`` when the chip answered without SM and dropped its keys:
the next call re-authenticates by itself), ``SecureMessagingError`` (bad MAC or 6987/6988: the
channel is dead; the next ``read_file`` re-authenticates once, or call ``open`` again),
``FileTooLarge`` (a file's TLV header claims more than ``lds.limits`` allows, EF.CardAccess
included: nothing past the first chunk is read), ``CardError`` (garbage or truncated responses,
or a chip that answers fewer than ``MIN_CHUNK`` bytes per READ BINARY more than ``MAX_DRIPS`` times),
and the transport's ``CardRemoved`` / ``TransmitError`` unchanged. Misuse (no candidates) is a ``TypeError``.

Related modules: ``apdu`` (``CommandApdu``), ``sw`` (``SW``, ``error_for``), ``crypto``, ``sm``
(``SecureMessaging``), ``bac`` (``Bac``), ``pace`` (``Pace``), ``chip_auth`` (``ChipAuthResult``),
``ec`` (curves), ``lds.security_infos`` (``parse_security_infos``), and the chip side in
``virtual_card.chip`` (``VirtualChip(image)``, an ``ApduHandler`` with ``reset()``).

Theory of operation.

Access control (``open``): EF.CardAccess is read first without protection (READ BINARY by SFI
1C, else ``00 A4 02 0C 02 01 1C`` + READ BINARY; some CCCD chips answer 6D00 to SELECT MF, so
the MF is never selected). When it lists a supported PACEInfo (ECDH generic mapping,
3DES/AES-128/192/256, parameters 12 P-256, 13 brainpoolP256r1, 15 P-384, 16 brainpoolP384r1),
PACE is tried with every CAN candidate (password reference 02), then every MRZ candidate (01);
the eMRTD application is then selected under SM. Otherwise, or when PACE fails, the application is
selected and BAC is tried with every MRZ candidate. A PACE-MRZ refused at MSE:Set AT (6982, seen
on real cards) skips the remaining PACE-MRZ runs and falls back to BAC. Bound: each candidate is
tried at most once per method, so at most len(CAN) + 2·len(MRZ) handshakes run before
``AccessDenied``; nothing retries forever.

Reading (``read_file``) minimises commands. The first READ BINARY addresses the file by its short
EF identifier (P1 = 80|SFI), which saves the SELECT; if the chip refuses SFI (6A86, 6A81, 6D00,
6B00, 6E00) the session switches to SELECT + READ BINARY for the rest of the session. The first
read asks for as much as possible: with an extended-length reader and chip, Le = 0000 ("all
you have, up to 64K"; DO97 = 0000 under SM), or the largest plain length whose protected
response fits ``max_response`` when the reader carries less than 64K; so one command usually
returns the whole file (EF.COM, EF.SOD, DG1, DG13, DG14, DG15: six commands).
Without extended length, Le is the largest short value: 256 plain, or the largest plain length
whose DO87 ‖ DO99 ‖ DO8E fits 256 bytes under SM (231 for 3DES, 223 for AES). The TLV header of
the first chunk gives the file length, checked against the file's cap (``lds.limits``) before
anything more is read; the rest is read with Le = exactly what remains (capped as
above). Adaptation: 6700 to an extended APDU → drop to short APDUs for the session; 6700 to a
short first read → read an 8-byte header probe, then exact lengths (and probe first for the
rest of the session); 6Cxx → Le = xx; 6282 → end of file; 6B00 → offset past the end. A chip
that drops SM with a bare 6700 to an extended APDU gets short APDUs and one re-authentication
(the access control that worked, run again); any other bare status word under SM is raised and
the next ``read_file`` re-authenticates first. Offsets above 7FFF use B1 with DO54. Every loop
is bounded.

APDU hex is logged only at DEBUG on the stdlib logger "idstation.traffic", and only the wire
bytes (encrypted under SM), never decrypted data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from idstation.agent.emrtd.apdu import CommandApdu, transmit_from_handler
from idstation.agent.emrtd.bac import Bac
from idstation.agent.emrtd.chip_auth import ChipAuthentication, ChipAuthResult, choose
from idstation.agent.emrtd.fids import FID_CARD_ACCESS
from idstation.agent.emrtd.keys import CanKey, MrzKey
from idstation.agent.emrtd.lds.security_infos import PaceInfo, SecurityInfos, parse_security_infos
from idstation.agent.emrtd.pace import Pace, supported_pace
from idstation.agent.emrtd.reading import FileReading
from idstation.agent.emrtd.sm import SecureMessaging, SmDropped
from idstation.agent.emrtd.sw import SW, check
from idstation.agent.errors import (
    AccessDenied,
    ApduError,
    CardError,
    CardRemoved,
    FileTooLarge,
    ParseError,
    SecureMessagingError,
    TransmitError,
)
from idstation.hal.logs import get_logger

traffic = logging.getLogger("idstation.traffic")
log = get_logger(__name__)

Transmit = Callable[[bytes], tuple[bytes, int]]
AID_EMRTD = bytes.fromhex("A0000002471001")
MAX_HANDSHAKE_STEPS = 8


class ChipSession(FileReading):
    """The driver over one card connection; see the module docstring."""

    def __init__(
        self, transmit: Transmit, *, extended_length: bool, max_response: int, rng: Callable[[int], bytes] = os.urandom
    ) -> None:
        self._transmit = transmit
        self.max_response = max(int(max_response), 1)
        self._extended = bool(extended_length) and self.max_response > 256
        self._sfi = True
        self._select_under_sm = True  # SELECT the application after PACE (dropped if the chip refuses)
        self._probe_first = False  # the chip wants an exact Le: read the TLV header first
        self._rng = rng
        self.sm: SecureMessaging | None = None
        self.method: str | None = None
        self._opened_with: tuple[CanKey | MrzKey, PaceInfo | None] | None = None
        self.card_access: bytes | None = None
        self.apdus = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    @classmethod
    def over(
        cls, handler: Callable[[bytes], bytes], *, extended_length: bool = True, max_response: int = 65536
    ) -> ChipSession:
        """A session straight over an ``ApduHandler`` such as ``VirtualChip``."""
        return cls(transmit_from_handler(handler), extended_length=extended_length, max_response=max_response)

    def __repr__(self) -> str:
        return f"ChipSession(method={self.method}, apdus={self.apdus})"

    @property
    def extended_length(self) -> bool:
        """Whether extended-length APDUs are still in use (off once the chip refused them)."""
        return self._extended

    # -- transport --------------------------------------------------------------------------------
    def _send(self, raw: bytes) -> tuple[bytes, int]:
        if traffic.isEnabledFor(logging.DEBUG):
            traffic.debug("apdu_out %s", raw.hex())
        self.apdus += 1
        self.bytes_sent += len(raw)
        data, sw = self._transmit(raw)
        if not isinstance(data, bytes | bytearray) or not isinstance(sw, int) or not 0 <= sw <= 0xFFFF:
            raise CardError("the reader returned a malformed response")
        self.bytes_received += len(data) + 2
        if traffic.isEnabledFor(logging.DEBUG):
            traffic.debug("apdu_in %s %04X", bytes(data).hex(), sw)
        return bytes(data), sw

    def _exchange(self, command: CommandApdu, *, extended: bool | None = None) -> tuple[bytes, int]:
        """One command, protected when a secure channel is open; returns plain (data, sw)."""
        if self.sm is None:
            return self._send(command.encode(extended=extended))
        sm = self.sm
        data, sw = self._send(sm.wrap(command, extended=extended))
        try:
            plain, status = sm.unwrap(data + sw.to_bytes(2, "big"))
        finally:
            if not sm.alive:
                self.sm = None
        if not sm.alive:
            if status in (SW.SM_DATA_MISSING, SW.SM_DATA_INCORRECT):
                raise SecureMessagingError(f"chip rejected secure messaging ({status:04X}) and dropped its keys")
            raise SmDropped(status)
        return plain, status

    # -- access control ---------------------------------------------------------------------------
    def read_card_access(self) -> bytes | None:
        """EF.CardAccess read unprotected; None when the chip has none (BAC-only chips)."""
        self.sm = None
        try:
            self.card_access = self.read_file(FID_CARD_ACCESS)
        except (CardRemoved, TransmitError, FileTooLarge):
            raise  # a header claiming more than the LDS allows is a hostile chip, not a BAC-only one
        except CardError:  # absent (6A82), refused, or garbage: no PACE, BAC decides
            self.card_access = None
        return self.card_access

    def open(self, candidates: Sequence[CanKey | MrzKey]) -> str:
        """Run access control over ``candidates``; return "PACE-CAN", "PACE-MRZ" or "BAC".

        Order: PACE with each CAN, then each MRZ key (if EF.CardAccess offers a supported
        PACEInfo), then BAC with each MRZ key. Bound: every distinct candidate is tried at most
        once per method, i.e. at most len(CAN) + 2·len(MRZ) handshakes; then ``AccessDenied``.
        """
        cans = list(dict.fromkeys(k for k in candidates if isinstance(k, CanKey)))
        mrzs = list(dict.fromkeys(k for k in candidates if isinstance(k, MrzKey)))
        if not cans and not mrzs:
            raise TypeError("open() needs at least one CanKey or MrzKey")
        self.sm, self.method, self._opened_with = None, None, None
        card_access = self.read_card_access()
        info = None
        if card_access is not None:
            try:
                info = supported_pace(parse_security_infos(card_access))
            except ParseError:
                info = None
        attempts = 0
        if info is not None:
            method, attempts = self._try_pace(info, cans, mrzs)
            if method:
                self._select_application()
                return method
        self._select_application()
        for key in mrzs:
            attempts += 1
            try:
                self.sm = self._handshake(Bac(key, rng=self._rng))
            except AccessDenied:
                log.info("access_refused", method="BAC", attempt=attempts)
                continue
            self.method, self._opened_with = "BAC", (key, None)
            return "BAC"
        raise AccessDenied(f"no access key opened the chip ({attempts} attempts)")

    def _try_pace(self, info: PaceInfo, cans: list[CanKey], mrzs: list[MrzKey]) -> tuple[str | None, int]:
        attempts = 0
        keys: list[CanKey | MrzKey] = [*cans, *mrzs]
        for key in keys:
            attempts += 1
            pace = Pace(key, info, rng=self._rng)
            try:
                self.sm = self._handshake(pace)
            except AccessDenied:
                log.info("access_refused", method=_pace_name(key), attempt=attempts, step=pace.failed_at)
                if isinstance(key, MrzKey) and pace.failed_at == "MSE":
                    break  # the chip refuses PACE with the MRZ: BAC next
                continue
            except (CardRemoved, TransmitError):
                raise
            except CardError as exc:
                log.info("pace_unusable", step=pace.failed_at, error=type(exc).__name__)
                break  # the chip does not support this PACE set-up (or answers garbage): BAC next
            self.method = _pace_name(key)
            self._opened_with = (key, info)
            return self.method, attempts
        return None, attempts

    def _handshake(self, machine: Bac | Pace) -> SecureMessaging:
        self.sm = None
        step = machine.start()
        for _ in range(MAX_HANDSHAKE_STEPS):
            data, sw = self._exchange(step)
            result = machine.receive(data, sw)
            if isinstance(result, SecureMessaging):
                return result
            step = result
        raise CardError("access control handshake did not finish")

    def _ensure_open(self) -> None:
        """Re-run the access control that worked when the chip dropped secure messaging.

        Some chips answer an error (e.g. 6982 for DG3) unprotected and drop their session keys;
        the next command then re-authenticates once with the same key (one handshake).
        """
        if self.sm is not None or self._opened_with is None:
            return
        key, info = self._opened_with
        log.info("reauthenticating", method=self.method)
        if info is not None:
            self.sm = self._handshake(Pace(key, info, rng=self._rng))
            if self._select_under_sm:
                self._select_application()
        elif isinstance(key, MrzKey):
            self._select_application()
            self.sm = self._handshake(Bac(key, rng=self._rng))

    def _select_application(self) -> None:
        """SELECT the eMRTD application; a refusal is tolerated (some chips select it implicitly).

        A chip that refuses it after PACE with a bare status word (dropping its keys) is opened
        again once, and never asked again.
        """
        try:
            self._exchange(CommandApdu(0x00, 0xA4, 0x04, 0x0C, AID_EMRTD))
        except SmDropped as exc:
            log.info("application_select_refused", sw=f"{exc.sw:04X}")
            self._select_under_sm = False
            self._ensure_open()
        except ApduError:
            pass

    # -- reading ----------------------------------------------------------------------------------
    def read_file(self, fid: int) -> bytes:
        """The whole elementary file ``fid`` (sized by its TLV header); see the module docstring.

        When the chip drops secure messaging with a bare 6700 to an extended APDU, extended
        length is turned off and the file is read once more after re-authentication.
        """
        if fid == FID_CARD_ACCESS:
            return self._read_whole(fid)
        self._ensure_open()
        try:
            return self._read_whole(fid)
        except SmDropped as exc:
            if exc.sw != SW.WRONG_LENGTH or not self._extended:
                raise
            self._extended = False
        self._ensure_open()
        return self._read_whole(fid)

    # -- authentication of the chip ---------------------------------------------------------------
    def internal_authenticate(self, challenge: bytes) -> bytes:
        """INTERNAL AUTHENTICATE (Active Authentication, ICAO 9303-11 §6.1): the signature bytes."""
        self._ensure_open()
        if self.sm is None:
            raise SecureMessagingError("INTERNAL AUTHENTICATE needs an open secure channel")
        data, sw = self._exchange(CommandApdu(0x00, 0x88, 0x00, 0x00, bytes(challenge), ne=256))
        check(sw, "INTERNAL AUTHENTICATE")
        return data

    def chip_authenticate(self, dg14: bytes | SecurityInfos) -> ChipAuthResult:
        """Chip Authentication (see ``chip_auth``). After "failed" the channel is closed."""
        try:
            infos = dg14 if isinstance(dg14, SecurityInfos) else parse_security_infos(dg14)
            choice = choose(infos)
            if choice is None:
                return ChipAuthResult("not_supported", reason="no ECDH chip authentication key in DG14")
            protocol = ChipAuthentication(choice[0], choice[1], rng=self._rng)
        except ParseError as exc:
            return ChipAuthResult("not_supported", reason=f"DG14 unusable: {exc}")
        self._ensure_open()
        if self.sm is None:
            raise SecureMessagingError("chip authentication needs an open secure channel")
        for command in protocol.commands():
            try:
                _data, sw = self._exchange(command)
            except SmDropped as exc:
                sw = exc.sw
            if sw != SW.OK:
                return ChipAuthResult("failed", choice[0].protocol, f"chip answered {sw:04X}")
        self.sm = protocol.secure_messaging()
        try:
            self._exchange(CommandApdu(0x00, 0xA4, 0x04, 0x0C, AID_EMRTD))
        except SecureMessagingError:
            return ChipAuthResult("failed", choice[0].protocol, "response under the new keys does not verify")
        except ApduError:
            pass  # the MAC verified: the chip holds the key, whatever it thinks of the SELECT
        if self.sm is None:
            return ChipAuthResult("failed", choice[0].protocol, "chip dropped secure messaging")
        return ChipAuthResult("ok", choice[0].protocol)


def _pace_name(key: CanKey | MrzKey) -> str:
    return "PACE-CAN" if isinstance(key, CanKey) else "PACE-MRZ"
