"""Command and response APDUs (ISO/IEC 7816-4 §5.1), encoded and decoded without I/O.

A ``CommandApdu`` holds the header (CLA INS P1 P2), the command data and ``ne`` (the number of
response bytes expected: 0 = no Le field, 256 = short ``00``, 65536 = extended ``0000``).
``encode()`` picks the short form when it fits and the extended form otherwise (or when asked).
``CommandApdu.decode()`` is the chip-side parser; ``parse_response()`` splits an R-APDU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from idstation.agent.emrtd import tlv
from idstation.agent.errors import ApduError, CardError, ParseError

SHORT_MAX_LC = 255
SHORT_MAX_NE = 256
EXTENDED_MAX_NE = 65536
EXTENDED_MAX_LC = 65535

SW_WRONG_LENGTH = 0x6700


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """One C-APDU. ``ne`` is Ne (0 … 65536), not the encoded Le byte."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int = 0

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise TypeError(f"APDU {name} {value} is not a byte")
        if len(self.data) > EXTENDED_MAX_LC:
            raise TypeError("APDU command data longer than 65535 bytes")
        if not 0 <= self.ne <= EXTENDED_MAX_NE:
            raise TypeError(f"APDU Ne {self.ne} out of range")

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def needs_extended(self) -> bool:
        return len(self.data) > SHORT_MAX_LC or self.ne > SHORT_MAX_NE

    def encode(self, *, extended: bool | None = None) -> bytes:
        """ISO 7816-4 §5.1 cases 1-4; ``extended=None`` chooses the short form when it fits."""
        use_extended = self.needs_extended() if extended is None else extended
        if not use_extended and self.needs_extended():
            raise TypeError("APDU does not fit the short form")
        out = bytearray(self.header)
        if use_extended and (self.data or self.ne):
            out.append(0x00)
            if self.data:
                out += len(self.data).to_bytes(2, "big") + self.data
            if self.ne:
                out += (self.ne % EXTENDED_MAX_NE).to_bytes(2, "big")
        else:
            if self.data:
                out.append(len(self.data))
                out += self.data
            if self.ne:
                out.append(self.ne % SHORT_MAX_NE)
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse a C-APDU (chip side). A malformed one raises ``ApduError(0x6700)``."""
        if len(raw) < 4:
            raise ApduError(SW_WRONG_LENGTH, "C-APDU shorter than a header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        data, ne = _decode_body(body)
        return cls(cla, ins, p1, p2, data, ne)


def _decode_body(body: bytes) -> tuple[bytes, int]:  # noqa: PLR0911 - one return per ISO 7816-4 case
    n = len(body)
    if n == 0:
        return b"", 0
    if n == 1:  # case 2 short
        return b"", body[0] or SHORT_MAX_NE
    if body[0] != 0 or n < 3:
        lc = body[0]
        if lc == 0:
            raise ApduError(SW_WRONG_LENGTH, "short Lc of zero")
        if n == 1 + lc:
            return body[1:], 0
        if n == 2 + lc:
            return body[1 : 1 + lc], body[-1] or SHORT_MAX_NE
        raise ApduError(SW_WRONG_LENGTH, "short Lc does not match the body")
    # extended: body[0] == 0 and at least 3 bytes
    if n == 3:  # case 2 extended
        return b"", int.from_bytes(body[1:3], "big") or EXTENDED_MAX_NE
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise ApduError(SW_WRONG_LENGTH, "extended Lc of zero")
    if n == 3 + lc:
        return body[3:], 0
    if n == 5 + lc:
        return body[3 : 3 + lc], int.from_bytes(body[-2:], "big") or EXTENDED_MAX_NE
    raise ApduError(SW_WRONG_LENGTH, "extended Lc does not match the body")


def is_extended(raw: bytes) -> bool:
    """True when the encoded C-APDU ``raw`` uses extended length fields (ISO 7816-4 §5.1)."""
    body = raw[4:]
    return len(body) >= 3 and body[0] == 0


def parse_response(rapdu: bytes) -> tuple[bytes, int]:
    """Split an R-APDU into (data, SW1SW2). Fewer than two bytes raises ``CardError``."""
    if len(rapdu) < 2:
        raise CardError(f"R-APDU of {len(rapdu)} bytes has no status word")
    return bytes(rapdu[:-2]), int.from_bytes(rapdu[-2:], "big")


def build_response(data: bytes, sw: int) -> bytes:
    """Chip side: data ‖ SW1 SW2."""
    return bytes(data) + sw.to_bytes(2, "big")


def transmit_from_handler(handler: Callable[[bytes], bytes]) -> Callable[[bytes], tuple[bytes, int]]:
    """Adapt an ``ApduHandler`` (C-APDU bytes → R-APDU bytes) to a ``transmit`` function."""

    def transmit(apdu: bytes) -> tuple[bytes, int]:
        return parse_response(handler(apdu))

    return transmit


def read_binary_command(offset: int, ne: int, sfi: int | None = None) -> CommandApdu:
    """READ BINARY (ISO 7816-4 §11.3.3): by SFI (P1 = 80|SFI, offset ≤ 255), B0 offset ≤ 7FFF, else B1 + DO54."""
    if sfi is not None:
        return CommandApdu(0x00, 0xB0, 0x80 | sfi, offset & 0xFF, ne=ne)
    if offset <= 0x7FFF:
        return CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, ne=ne)
    value = offset.to_bytes((offset.bit_length() + 7) // 8, "big")
    return CommandApdu(0x00, 0xB1, 0x00, 0x00, tlv.encode(0x54, value), ne=ne)


def unwrap_do53(data: bytes) -> bytes:
    """READ BINARY B1 answers carry the bytes in DO53 (a malformed one raises ``CardError``)."""
    if not data:
        return data
    try:
        return tlv.decode_one(data)[0].value
    except ParseError:
        raise CardError("READ BINARY B1 answer is not a DO53") from None
