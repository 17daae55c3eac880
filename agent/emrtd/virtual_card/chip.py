"""The virtual CCCD chip: an ICAO 9303 eMRTD application as an ``ApduHandler``.

Theory of operation: ``VirtualChip(image)`` answers C-APDU bytes with R-APDU bytes, the way
the session in ``idstation.agent.emrtd.session`` expects a real CCCD chip to. Before access
control only EF.CardAccess can be read (plain). BAC (GET CHALLENGE + EXTERNAL AUTHENTICATE) or
PACE-ECDH-GM (MSE:Set AT + four GENERAL AUTHENTICATE, CAN or MRZ password) opens secure
messaging; after that every file is read under SM only (a plain command drops the SM session,
as ICAO 9303-11 §9.8 requires). DG3 answers 6982 (it needs Terminal Authentication), absent
files 6A82, SELECT MF 6D00 (as some CCCD chips do). READ BINARY: B0 by offset or by short EF
identifier, B1 with DO54 offsets; Le 00/0000 means "as much as you have" (capped at 256 for a
short APDU and at ``image.max_response``); an exact Le past the end gives the rest with 6282, or
6Cxx when ``faults.exact_le``. INTERNAL AUTHENTICATE signs with ``image.aa_key``; Chip
Authentication uses ``image.ca_key``. ``reset()`` is a power cycle. The fault switches in
``image.faults`` simulate field problems; ``faults.hostile`` serves a hostile file
(``hostile.py``). No input makes ``__call__`` raise, except the simulated removal
(``CardRemoved``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.apdu import CommandApdu, build_response, is_extended
from idstation.agent.emrtd.bac import BacChip
from idstation.agent.emrtd.fids import FID_CARD_ACCESS, FID_DG
from idstation.agent.emrtd.fids import SFI_OF as SFI
from idstation.agent.emrtd.keys import MrzKey
from idstation.agent.emrtd.sm import SecureMessaging, max_plain_response, response_overhead
from idstation.agent.emrtd.virtual_card.image import ChipImage
from idstation.agent.emrtd.virtual_card.pace_chip import ChipAuthChip, PaceChip
from idstation.agent.errors import ApduError, ParseError
from idstation.hal.errors import CardRemoved

AID_EMRTD = bytes.fromhex("A0000002471001")
FID_MF = 0x3F00
_BY_SFI = {sfi: fid for fid, sfi in SFI.items()}
Rng = Callable[[int], bytes]


class VirtualChip:
    """An ``ApduHandler`` serving one ``ChipImage``; ``reset()`` is a power cycle."""

    def __init__(self, image: ChipImage, *, rng: Rng = os.urandom, plain_sm_errors: bool = False) -> None:
        """``plain_sm_errors``: answer errors under SM unprotected and drop the keys (some chips do)."""
        self.image = image
        self.plain_sm_errors = plain_sm_errors
        self.faults = image.faults
        self._rng = rng
        self._served: dict[int, bytes] | None = None
        self.reset()

    def __repr__(self) -> str:
        return f"VirtualChip(files={len(self.image.files)}, access={self.access})"

    def reset(self) -> None:
        mrz = MrzKey(self.image.doc_number, self.image.date_of_birth, self.image.date_of_expiry)
        self.commands = 0
        self.sm: SecureMessaging | None = None
        self.access = False
        self.selected: int | None = None
        self._dead = False
        self._next_sm: SecureMessaging | None = None
        self._bac = BacChip(mrz, self._rng)
        card_access = self._files().get(FID_CARD_ACCESS, b"")
        self._pace = PaceChip(card_access, self.image.can, mrz, refuse_mrz=self.faults.pace_mrz_refused, rng=self._rng)
        self._ca = ChipAuthChip(self.image.ca_key)

    def _files(self) -> dict[int, bytes]:
        if self._served is None:
            files = dict(self.image.files)
            if self.faults.hostile:
                from idstation.agent.emrtd.virtual_card.hostile import hostile_files

                files.update(hostile_files(self.faults.hostile))
            if self.faults.bac_only:
                files.pop(FID_CARD_ACCESS, None)
            self._served = files
        return self._served

    def __call__(self, apdu: bytes) -> bytes:
        self.commands += 1
        if self.faults.remove_after is not None and self.commands > self.faults.remove_after:
            raise CardRemoved("the virtual card left the field")
        if self.faults.slow_ms:
            time.sleep(self.faults.slow_ms / 1000)
        if self._dead:
            return build_response(b"", 0x6F00)
        try:
            return self._handle(bytes(apdu))
        except (ApduError, ParseError) as exc:
            return build_response(b"", getattr(exc, "sw", 0x6F00))

    def _drop(self) -> None:
        self.sm, self.access, self._next_sm = None, False, None

    def _grant(self, sm: SecureMessaging) -> None:
        self.sm, self.access = sm, True
        if self.faults.dead_after_access:
            self._dead = True

    def _handle(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            raise ApduError(0x6700, "short APDU")
        extended = is_extended(raw)
        if extended and self.faults.no_extended_length:
            raise ApduError(0x6700, "extended length not supported")
        if raw[0] & 0x0C == 0x0C:
            return self._protected(raw, extended)
        if raw[0] & ~0x10 & 0xFF:
            raise ApduError(0x6E00, "class not supported")
        if self.sm is not None:
            self._drop()
        command = CommandApdu.decode(raw)
        data, sw = self._execute(command, protected=False, extended=extended)
        return build_response(data, sw)

    def _protected(self, raw: bytes, extended: bool) -> bytes:
        sm = self.sm
        if sm is None:
            raise ApduError(0x6987, "no secure messaging session")
        try:
            command = sm.unwrap_command(raw)
        except ApduError:
            self._drop()
            raise
        try:
            data, sw = self._execute(command, protected=True, extended=extended)
        except (ApduError, ParseError) as exc:
            data, sw = b"", getattr(exc, "sw", 0x6F00)
        if not extended and data and len(data) + response_overhead(len(data), sm.cipher.block) > 256:
            data, sw = b"", 0x6700
        if self.plain_sm_errors and sw not in (0x9000, 0x6282):
            self._drop()
            return build_response(b"", sw)
        response = sm.wrap_response(data, sw, corrupt_mac=self.faults.bad_response_mac)
        if self._next_sm is not None:
            self.sm, self._next_sm = self._next_sm, None
        return response

    def _execute(self, command: CommandApdu, *, protected: bool, extended: bool) -> tuple[bytes, int]:
        ins = command.ins
        if ins in (0xB0, 0xB1):
            return self._read(command, protected=protected, extended=extended)
        handlers = {
            0xA4: self._select,
            0x84: self._get_challenge,
            0x82: self._external_authenticate,
            0x22: self._mse,
            0x86: self._general_authenticate,
            0x88: self._internal_authenticate,
        }
        handler = handlers.get(ins)
        if handler is None:
            raise ApduError(0x6D00, "instruction not supported")
        return handler(command, protected=protected)

    def _get_challenge(self, command: CommandApdu, *, protected: bool) -> tuple[bytes, int]:
        if protected:
            return self._rng(min(command.ne, 256)), 0x9000
        return self._bac.challenge(command.ne), 0x9000

    def _external_authenticate(self, command: CommandApdu, *, protected: bool) -> tuple[bytes, int]:
        if protected:
            raise ApduError(0x6982, "Terminal Authentication is not supported")
        data, sm = self._bac.authenticate(command.data)
        self._grant(sm)
        return data, 0x9000

    def _select(self, command: CommandApdu, *, protected: bool) -> tuple[bytes, int]:
        if command.p1 == 0x04:
            if command.data != AID_EMRTD:
                raise ApduError(0x6A82, "application not found")
            return b"", 0x9000
        if command.p1 not in (0x00, 0x02):
            raise ApduError(0x6A86, "SELECT P1")
        if not command.data or command.data == FID_MF.to_bytes(2, "big"):
            raise ApduError(0x6D00, "SELECT MF")
        if len(command.data) != 2:
            raise ApduError(0x6700, "file identifier length")
        fid = int.from_bytes(command.data, "big")
        content = self._files().get(fid)
        if content is None:
            raise ApduError(0x6A82, "file not found")
        self.selected = fid
        if command.p2 & 0x0C == 0x0C:
            return b"", 0x9000
        fcp = tlv.encode(0x80, len(content).to_bytes(2, "big")) + tlv.encode(0x83, command.data)
        return tlv.encode(0x62, fcp), 0x9000

    def _file_for_read(self, command: CommandApdu) -> tuple[int, int]:
        """(fid, offset) of a READ BINARY; selects the file when addressed by SFI."""
        if command.ins == 0xB1:
            try:
                offset_do = tlv.decode(command.data, 0x54)
            except ParseError:
                raise ApduError(0x6A80, "B1 needs DO54") from None
            p1p2 = (command.p1 << 8) | command.p2
            fid = self.selected if p1p2 == 0 else p1p2
            offset = int.from_bytes(offset_do.value, "big")
        elif command.p1 & 0x80:
            if self.faults.no_sfi:
                raise ApduError(0x6A86, "short EF identifiers not supported")
            fid, offset = _BY_SFI.get(command.p1 & 0x1F, -1), command.p2
        else:
            fid, offset = self.selected, ((command.p1 & 0x7F) << 8) | command.p2
        if fid is None:
            raise ApduError(0x6986, "no current file")
        if fid not in self._files():
            raise ApduError(0x6A82, "file not found")
        self.selected = fid
        return fid, offset

    def _read(self, command: CommandApdu, *, protected: bool, extended: bool) -> tuple[bytes, int]:
        fid, offset = self._file_for_read(command)
        if fid != FID_CARD_ACCESS and (not protected or not self.access or fid == FID_DG[3]):
            raise ApduError(0x6982, "security status not satisfied")
        content = self._files()[fid]
        if offset > len(content):
            raise ApduError(0x6B00, "offset beyond the end of file")
        available = len(content) - offset
        cap = min(self.image.max_response, 65536 if extended else 256)
        if protected and self.sm is not None:
            cap = max_plain_response(cap, self.sm.cipher.block)
        wants_all = command.ne in (256, 65536) or command.ne == 0
        if not wants_all and command.ne > available and available <= cap:
            if self.faults.exact_le and not extended and available:
                raise ApduError(0x6C00 | (available & 0xFF), "wrong Le")
            chunk, sw = content[offset:], 0x6282
        else:
            limit = cap if wants_all else min(cap, command.ne)
            if self.faults.max_chunk:
                limit = min(limit, self.faults.max_chunk)
            if command.ins == 0xB1:
                limit -= 1 + len(tlv.encode_length(limit))
            chunk, sw = content[offset : offset + max(limit, 0)], 0x9000
        if command.ins == 0xB1:
            chunk = tlv.encode(0x53, chunk)
        return chunk, sw

    def _mse(self, command: CommandApdu, *, protected: bool) -> tuple[bytes, int]:
        p1p2 = (command.p1 << 8) | command.p2
        if p1p2 == 0xC1A4 and not protected:
            if FID_CARD_ACCESS not in self._files():
                raise ApduError(0x6A80, "PACE not supported")
            self._pace.set_at(command.data)
            return b"", 0x9000
        if p1p2 == 0x41A4 and protected and self.access:
            self._ca.set_at(command.data)
            return b"", 0x9000
        if p1p2 == 0x41A6 and protected and self.access:
            self._next_sm = self._ca.key_agreement(command.data)
            return b"", 0x9000
        raise ApduError(0x6A86, "MSE variant not supported")

    def _general_authenticate(self, command: CommandApdu, *, protected: bool) -> tuple[bytes, int]:
        if protected and self.access:
            self._next_sm = self._ca.general_authenticate(command.data)
            return tlv.encode(0x7C, b""), 0x9000
        if protected:
            raise ApduError(0x6985, "GENERAL AUTHENTICATE out of place")
        data, sm = self._pace.step(command.cla, command.data)
        if sm is not None:
            self._grant(sm)
        return data, 0x9000

    def _internal_authenticate(self, command: CommandApdu, *, protected: bool) -> tuple[bytes, int]:
        if not protected or not self.access:
            raise ApduError(0x6982, "INTERNAL AUTHENTICATE needs secure messaging")
        if self.image.aa_key is None:
            raise ApduError(0x6D00, "no Active Authentication key")
        if len(command.data) != 8:
            raise ApduError(0x6700, "challenge must be 8 bytes")
        from idstation.agent.emrtd.active_auth import sign_challenge

        return sign_challenge(self.image.aa_key, command.data), 0x9000
