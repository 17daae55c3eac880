"""Secure messaging (ICAO 9303-11 §9.8; ISO/IEC 7816-4 §10), terminal and chip side.

Theory of operation: after BAC, PACE or Chip Authentication both sides hold ``ks_enc``,
``ks_mac`` and a send sequence counter ``ssc`` (8 bytes for 3DES, 16 for AES). Every protected
command and every protected response first increments ``ssc``. A command's data is padded,
encrypted (3DES-CBC with a zero IV, or AES-CBC with IV = E(ks_enc, ssc)) and sent in DO87
(even INS: ``01`` ‖ cryptogram) or DO85 (odd INS); Ne goes in DO97; the MAC over
pad(ssc ‖ pad(masked header) ‖ DO87/85 ‖ DO97) goes in DO8E. The response carries DO87
(data), DO99 (the real status word) and DO8E (MAC over pad(ssc ‖ DO87 ‖ DO99)).

A bad MAC, a missing DO99/DO8E or any malformed object raises ``SecureMessagingError`` and
kills the channel (``alive`` turns False; every later use raises). An unprotected error status
word (the chip dropped its SM keys, e.g. 6982 or 6988) also kills the channel; it is returned
as ``(b"", sw)`` so the caller can map it. ``SecureMessaging`` holds one state for either side:
terminal ``wrap``/``unwrap``, chip ``unwrap_command``/``wrap_response``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.apdu import SHORT_MAX_LC, SHORT_MAX_NE, CommandApdu, parse_response
from idstation.agent.emrtd.crypto import SmCipher, pad, unpad
from idstation.agent.errors import ApduError, SecureMessagingError, TlvError

DO85, DO87, DO8E, DO97, DO99 = 0x85, 0x87, 0x8E, 0x97, 0x99
SM_CLA = 0x0C
MAC_SIZE = 8


def response_overhead(plain_len: int, block: int) -> int:
    """Bytes a protected response of ``plain_len`` data bytes takes (DO87 + DO99 + DO8E)."""
    if plain_len == 0:
        return 4 + 2 + MAC_SIZE
    cryptogram = (plain_len // block + 1) * block + 1
    return len(tlv.encode_length(cryptogram)) + 1 + cryptogram + 4 + 2 + MAC_SIZE - plain_len


def max_plain_response(budget: int, block: int) -> int:
    """Largest plain data length whose protected response fits in ``budget`` bytes (no SW)."""
    n = max(budget - 4 - 2 - MAC_SIZE - 1 - 4 - block, 0)
    while n + 1 <= budget and n + 1 + response_overhead(n + 1, block) <= budget:
        n += 1
    while n > 0 and n + response_overhead(n, block) > budget:
        n -= 1
    return n


class SmDropped(ApduError):
    """The chip answered a protected command with a bare status word: its SM keys are gone."""

    def __init__(self, sw: int) -> None:
        super().__init__(sw, "secure messaging (unprotected answer)")


@dataclass(slots=True)
class SecureMessaging:
    """An SM channel: ``cipher`` (3DES/AES), session keys and the SSC as an integer."""

    cipher: SmCipher
    ks_enc: bytes
    ks_mac: bytes
    ssc: int = 0
    alive: bool = True

    def __repr__(self) -> str:  # keys never printed
        return f"SecureMessaging({self.cipher.algorithm}-{self.cipher.key_bits}, alive={self.alive})"

    # -- shared helpers -------------------------------------------------------------------------
    def _next_ssc(self) -> bytes:
        if not self.alive:
            raise SecureMessagingError("secure messaging session is closed")
        self.ssc = (self.ssc + 1) % (1 << (8 * self.cipher.block))
        return self.ssc.to_bytes(self.cipher.block, "big")

    def _mac(self, ssc: bytes, data: bytes) -> bytes:
        return self.cipher.mac(self.ks_mac, pad(ssc + data, self.cipher.block))

    def _encrypt(self, ssc: bytes, plain: bytes) -> bytes:
        iv = self.cipher.sm_iv(self.ks_enc, ssc)
        return self.cipher.encrypt(self.ks_enc, pad(plain, self.cipher.block), iv)

    def _decrypt(self, ssc: bytes, cryptogram: bytes) -> bytes:
        iv = self.cipher.sm_iv(self.ks_enc, ssc)
        return unpad(self.cipher.decrypt(self.ks_enc, cryptogram, iv))

    def _fail(self, message: str) -> SecureMessagingError:
        self.alive = False
        return SecureMessagingError(message)

    # -- terminal side --------------------------------------------------------------------------
    def wrap(self, command: CommandApdu, *, extended: bool | None = None) -> bytes:
        """Protect ``command``; return the encoded C-APDU (short or extended as needed)."""
        ssc = self._next_ssc()
        cla = command.cla | SM_CLA
        header = bytes((cla, command.ins, command.p1, command.p2))
        body = b""
        if command.data:
            cryptogram = self._encrypt(ssc, command.data)
            if command.ins & 1:
                body += tlv.encode(DO85, cryptogram)
            else:
                body += tlv.encode(DO87, b"\x01" + cryptogram)
        if command.ne:
            le_len = 1 if command.ne <= SHORT_MAX_NE else 2
            body += tlv.encode(DO97, (command.ne % (1 << (8 * le_len))).to_bytes(le_len, "big"))
        mac = self._mac(ssc, pad(header, self.cipher.block) + body)
        body += tlv.encode(DO8E, mac)
        use_extended = extended if extended is not None else (len(body) > SHORT_MAX_LC or command.ne > SHORT_MAX_NE)
        outer = CommandApdu(cla, command.ins, command.p1, command.p2, body, 65536 if use_extended else 256)
        return outer.encode(extended=use_extended)

    def unwrap(self, rapdu: bytes) -> tuple[bytes, int]:
        """Verify and decrypt a protected R-APDU; return (plain data, status word from DO99)."""
        data, outer_sw = parse_response(rapdu)
        ssc = self._next_ssc()
        if not data:
            self.alive = False
            if outer_sw == 0x9000:
                raise SecureMessagingError("protected response without DO99/DO8E")
            return b"", outer_sw
        try:
            objects = tlv.decode_all(data)
        except TlvError:
            raise self._fail("protected response is not valid BER-TLV") from None
        return self._check_response(ssc, data, objects)

    def _check_response(self, ssc: bytes, data: bytes, objects: list[tlv.Tlv]) -> tuple[bytes, int]:
        if len(objects) < 2 or objects[-1].tag != DO8E or objects[-2].tag != DO99:
            raise self._fail("protected response lacks DO99 or DO8E")
        mac_object = objects[-1]
        covered = data[: len(data) - len(mac_object.encode())]
        if not hmac.compare_digest(self._mac(ssc, covered), mac_object.value):
            raise self._fail("protected response MAC is wrong")
        status = objects[-2].value
        if len(status) != 2:
            raise self._fail("DO99 does not hold a status word")
        plain = b""
        for item in objects[:-2]:
            if item.tag not in (DO85, DO87) or plain:
                raise self._fail(f"unexpected object {item.tag:X} in a protected response")
            plain = self._response_plain(ssc, item)
        return plain, int.from_bytes(status, "big")

    def _response_plain(self, ssc: bytes, item: tlv.Tlv) -> bytes:
        cryptogram = item.value
        if item.tag == DO87:
            if not cryptogram or cryptogram[0] != 0x01:
                raise self._fail("DO87 padding indicator is not 01")
            cryptogram = cryptogram[1:]
        if not cryptogram:
            raise self._fail("empty cryptogram in a protected response")
        try:
            return self._decrypt(ssc, cryptogram)
        except SecureMessagingError:
            self.alive = False
            raise

    # -- chip side ------------------------------------------------------------------------------
    def unwrap_command(self, raw: bytes) -> CommandApdu:
        """Chip side: verify and decrypt a protected C-APDU. Errors raise ``ApduError(6987/6988)``."""
        command = CommandApdu.decode(raw)
        ssc = self._next_ssc()
        if command.cla & SM_CLA != SM_CLA:
            raise ApduError(0x6987, "command is not protected")
        try:
            objects = tlv.decode_all(command.data)
        except TlvError:
            raise ApduError(0x6988, "protected command is not BER-TLV") from None
        if not objects or objects[-1].tag != DO8E:
            raise ApduError(0x6987, "protected command has no DO8E")
        covered = command.data[: len(command.data) - len(objects[-1].encode())]
        header = bytes((command.cla, command.ins, command.p1, command.p2))
        expected = self._mac(ssc, pad(header, self.cipher.block) + covered)
        if not hmac.compare_digest(expected, objects[-1].value):
            raise ApduError(0x6988, "protected command MAC is wrong")
        plain, ne = b"", 0
        for item in objects[:-1]:
            plain, ne = self._command_object(ssc, item, plain, ne)
        return CommandApdu(command.cla & ~SM_CLA & 0xFF, command.ins, command.p1, command.p2, plain, ne)

    def _command_object(self, ssc: bytes, item: tlv.Tlv, plain: bytes, ne: int) -> tuple[bytes, int]:
        if item.tag == DO97:
            if len(item.value) not in (1, 2):
                raise ApduError(0x6988, "DO97 length")
            value = int.from_bytes(item.value, "big")
            return plain, value or (256 if len(item.value) == 1 else 65536)
        if item.tag in (DO85, DO87):
            cryptogram = item.value[1:] if item.tag == DO87 else item.value
            if item.tag == DO87 and item.value[:1] != b"\x01":
                raise ApduError(0x6988, "DO87 padding indicator")
            try:
                return self._decrypt(ssc, cryptogram), ne
            except SecureMessagingError:
                raise ApduError(0x6988, "bad cryptogram") from None
        raise ApduError(0x6988, "unexpected SM object")

    def wrap_response(self, data: bytes, sw: int, *, corrupt_mac: bool = False) -> bytes:
        """Chip side: protect a response (DO87 if data, DO99, DO8E); outer SW equals ``sw``."""
        ssc = self._next_ssc()
        body = b""
        if data:
            body += tlv.encode(DO87, b"\x01" + self._encrypt(ssc, data))
        body += tlv.encode(DO99, sw.to_bytes(2, "big"))
        mac = self._mac(ssc, body)
        if corrupt_mac:
            mac = bytes([mac[0] ^ 0x01]) + mac[1:]
        return body + tlv.encode(DO8E, mac) + sw.to_bytes(2, "big")
