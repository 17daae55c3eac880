"""Reading whole elementary files through a chip session (ICAO 9303-10 §3.6, ISO 7816-4 §11.3.3).

``FileReading`` is the READ BINARY strategy ``ChipSession`` uses: the first chunk by short EF
identifier (P1 = 80|SFI, saving the SELECT) unless the chip refuses SFI, else SELECT + READ BINARY;
the file's TLV header sizes the rest; chunks fit the reader's response limit under secure
messaging; Le adapts to 6700 (extended refused / Le too long) and 6Cxx (exact Le); a chip that
drips a few bytes per answer, or a header claiming more than the LDS allows, is given up on.
"""

from __future__ import annotations

from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.apdu import CommandApdu, read_binary_command, unwrap_do53
from idstation.agent.emrtd.fids import FID_CARD_ACCESS, SFI_OF
from idstation.agent.emrtd.lds.limits import max_file_size
from idstation.agent.emrtd.sm import SecureMessaging, max_plain_response
from idstation.agent.emrtd.sw import SW, check, exact_le, is_wrong_le
from idstation.agent.errors import ApduError, CardError, FileTooLarge, ParseError, SecureMessagingError
from idstation.hal.logs import get_logger

__all__ = ["SFI_REFUSED", "FileReading"]

log = get_logger("idstation.agent.emrtd.session")

SFI_REFUSED = frozenset({0x6A86, 0x6A81, 0x6D00, 0x6B00, 0x6E00, 0x6A82})
MAX_SHORT_RETRIES = 4
MIN_CHUNK = 32  # a READ BINARY answer shorter than this (and than asked) before the end is a drip
MAX_DRIPS = 8  # drips tolerated per file before the chip is given up on
HEADER_PROBE = 8  # bytes asked for when a chip wants an exact Le: enough for any LDS TLV header
_DENIED = (SW.SECURITY_NOT_SATISFIED, SW.FILE_NOT_FOUND)


class FileReading:
    """READ BINARY of whole files; mixed into ``ChipSession``, which provides the exchange and state."""

    sm: SecureMessaging | None
    max_response: int
    _extended: bool
    _sfi: bool
    _probe_first: bool

    def _exchange(self, command: CommandApdu, *, extended: bool | None = None) -> tuple[bytes, int]:
        raise NotImplementedError  # ChipSession's transport

    def _chunk_limit(self, extended: bool) -> int:
        budget = min(self.max_response, 65536 if extended else 256)
        if self.sm is not None:
            budget = max_plain_response(budget, self.sm.cipher.block)
        if budget < 1:
            raise CardError(f"the reader carries {self.max_response} response bytes: too few for secure messaging")
        return budget

    def _read_binary(self, offset: int, ne: int, *, sfi: int | None = None, exact: bool = False) -> tuple[bytes, int]:
        """One READ BINARY, adapting Le to 6700 (extended refused / Le too long) and 6Cxx.

        A 6700 to an extended APDU whose Le may run past the end (``exact`` False: a first read)
        is answered with a short header probe; a 6700 to an extended APDU with the exact remaining
        length means the chip takes no extended APDUs: short APDUs for the rest of the session.
        """
        for _ in range(MAX_SHORT_RETRIES + 2):
            extended = ne > 256
            command = read_binary_command(offset, ne, sfi)
            data, sw = self._exchange(command, extended=extended or None)
            if sw == SW.WRONG_LENGTH and extended and not exact:
                ne, exact = HEADER_PROBE, True
            elif sw == SW.WRONG_LENGTH and extended:
                self._extended = False
                ne = min(ne, self._chunk_limit(False))
            elif sw == SW.WRONG_LENGTH and ne > HEADER_PROBE:
                self._probe_first = self._probe_first or offset == 0
                ne = HEADER_PROBE if offset == 0 else ne // 2  # learn the length first, then exact Le
            elif is_wrong_le(sw):
                ne = exact_le(sw)
            else:
                return (unwrap_do53(data) if offset > 0x7FFF else data), sw
        raise ApduError(SW.WRONG_LENGTH, "READ BINARY")

    def _first_le(self) -> int:
        """Ne of a file's first READ BINARY: 0000 (all, up to 64K) on an extended-length path."""
        if self._probe_first:
            return HEADER_PROBE
        if self._extended and self.max_response >= 65536:
            return 65536
        return self._chunk_limit(self._extended)

    def _first_chunk(self, fid: int) -> tuple[bytes, int]:
        had_sm = self.sm is not None
        sfi = SFI_OF.get(fid)
        first = self._first_le()
        if self._sfi and sfi is not None:
            data, sw = self._read_binary(0, first, sfi=sfi)
            if sw in (SW.OK, SW.END_OF_FILE):
                return data, sw
            if (sw not in SFI_REFUSED and sw != SW.SECURITY_NOT_SATISFIED) or (had_sm and self.sm is None):
                check(sw, "READ BINARY")
            if sw in SFI_REFUSED - {SW.FILE_NOT_FOUND}:
                self._sfi = False
                log.info("sfi_refused", sw=f"{sw:04X}")
        data, sw = self._exchange(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
        check(sw, "SELECT")
        data, sw = self._read_binary(0, first)
        if sw not in (SW.OK, SW.END_OF_FILE, *_DENIED) and self._extended and (self.sm is not None or not had_sm):
            self._extended = False  # some chips reject extended APDUs with other status words
            log.info("extended_length_off", sw=f"{sw:04X}")
            data, sw = self._read_binary(0, self._chunk_limit(False))
        if sw not in (SW.OK, SW.END_OF_FILE):
            check(sw, "READ BINARY")
        return data, sw

    def _read_whole(self, fid: int) -> bytes:
        if fid != FID_CARD_ACCESS and self.sm is None:
            raise SecureMessagingError("the chip dropped secure messaging")
        first, sw = self._first_chunk(fid)
        try:
            total = tlv.total_length(first)
        except ParseError:
            raise CardError(f"file {fid:04X} does not start with a TLV header") from None
        if total > max_file_size(fid):
            raise FileTooLarge(f"file {fid:04X} claims {total} bytes, more than the {max_file_size(fid)} allowed")
        buffer = bytearray(first)  # appended in place: linear in the file size
        drips = 0
        max_reads = total // 16 + 8
        for _ in range(max_reads):
            if len(buffer) >= total:
                return bytes(buffer[:total])
            if sw == SW.END_OF_FILE:
                break
            remaining = total - len(buffer)
            extended = self._extended and remaining > 256
            if len(buffer) > 0x7FFF:  # B1 answers wrap the bytes in DO53
                remaining += 1 + len(tlv.encode_length(remaining))
                extended = self._extended and remaining > 256
            ne = min(remaining, self._chunk_limit(extended))
            data, sw = self._read_binary(len(buffer), ne, exact=True)
            if sw == SW.WRONG_PARAMETERS:
                break  # 6B00: offset beyond the end, the file is shorter than its header says
            if sw not in (SW.OK, SW.END_OF_FILE):
                check(sw, "READ BINARY")
            if not data:
                break
            buffer += data
            drips += sw == SW.OK and len(data) < min(ne, MIN_CHUNK)
            if drips > MAX_DRIPS:  # a chip dripping a 1 MiB file byte by byte would hold the reader for hours
                raise CardError(f"file {fid:04X}: the chip answers a few bytes per READ BINARY")
        raise CardError(f"file {fid:04X} ended after {len(buffer)} of {total} bytes")
