"""SecurityInfos of EF.CardAccess and DG14 (ICAO 9303-11 §9.2), parsed and encoded.

``SecurityInfos ::= SET OF SecurityInfo``; ``SecurityInfo ::= SEQUENCE { protocol OID,
requiredData ANY, optionalData ANY OPTIONAL }``. Known kinds become frozen dataclasses:
``PaceInfo``, ``PaceDomainParameterInfo``, ``ChipAuthenticationInfo``,
``ChipAuthenticationPublicKeyInfo``, ``ActiveAuthenticationInfo``, ``TerminalAuthenticationInfo``;
anything else (or a known OID with an unexpected body) is kept raw as ``UnknownSecurityInfo``.
A structure that is not a SET of SEQUENCEs raises ``TlvError``/``ParseError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from idstation.agent.emrtd import tlv
from idstation.agent.errors import ParseError, TlvError

ID_BSI = "0.4.0.127.0.7"
ID_PK = ID_BSI + ".2.2.1"  # .1 DH, .2 ECDH
ID_TA = ID_BSI + ".2.2.2"
ID_CA = ID_BSI + ".2.2.3"  # .1.x DH, .2.x ECDH; x: 1 3DES, 2 AES-128, 3 AES-192, 4 AES-256
ID_PACE = ID_BSI + ".2.2.4"  # .1 DH-GM .2 ECDH-GM .3 DH-IM .4 ECDH-IM .6 ECDH-CAM
ID_PK_DH = ID_PK + ".1"
ID_PK_ECDH = ID_PK + ".2"
ID_AA = "2.23.136.1.1.5"

PACE_ECDH_GM_3DES = ID_PACE + ".2.1"
PACE_ECDH_GM_AES_128 = ID_PACE + ".2.2"
PACE_ECDH_GM_AES_192 = ID_PACE + ".2.3"
PACE_ECDH_GM_AES_256 = ID_PACE + ".2.4"
CA_ECDH_3DES = ID_CA + ".2.1"
CA_ECDH_AES_128 = ID_CA + ".2.2"
CA_ECDH_AES_192 = ID_CA + ".2.3"
CA_ECDH_AES_256 = ID_CA + ".2.4"

_CIPHERS = {"1": ("3DES", 128), "2": ("AES", 128), "3": ("AES", 192), "4": ("AES", 256)}


def encode_oid(oid: str) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (X.690 §8.19)."""
    arcs = [int(a) for a in oid.split(".")]
    if len(arcs) < 2:
        raise TypeError("OID needs two arcs")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def decode_oid(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise ParseError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _int(value: int) -> bytes:
    return tlv.encode(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


MAX_SMALL_INT = 2**31 - 1  # versions, parameter IDs and key IDs are small non-negative numbers


def _read_int(item: tlv.Tlv) -> int:
    """A version, parameter ID or key ID: 0 … 2^31-1, else ``ParseError`` (the info is kept raw)."""
    if item.tag != 0x02 or not item.value:
        raise ParseError("expected an INTEGER")
    if len(item.value) > 5:
        raise ParseError("INTEGER out of range")
    value = int.from_bytes(item.value, "big", signed=True)
    if not 0 <= value <= MAX_SMALL_INT:
        raise ParseError("INTEGER out of range")
    return value


def cipher_of(protocol: str) -> tuple[str, int]:
    """("3DES"|"AES", key bits) named by the last arc of a PACE or CA protocol OID."""
    try:
        return _CIPHERS[protocol.rsplit(".", 1)[1]]
    except (KeyError, IndexError):
        raise ParseError("protocol OID names no known cipher") from None


@dataclass(frozen=True, slots=True)
class PaceInfo:
    protocol: str
    version: int
    parameter_id: int | None = None

    @property
    def mapping(self) -> str:
        """ "DH-GM", "ECDH-GM", "DH-IM", "ECDH-IM" or "ECDH-CAM"."""
        kind = self.protocol[len(ID_PACE) + 1 :].split(".")[0]
        return {"1": "DH-GM", "2": "ECDH-GM", "3": "DH-IM", "4": "ECDH-IM", "6": "ECDH-CAM"}.get(kind, "unknown")

    @property
    def cipher(self) -> tuple[str, int]:
        return cipher_of(self.protocol)

    def encode(self) -> bytes:
        body = tlv.encode(0x06, encode_oid(self.protocol)) + _int(self.version)
        if self.parameter_id is not None:
            body += _int(self.parameter_id)
        return tlv.encode(0x30, body)


@dataclass(frozen=True, slots=True)
class PaceDomainParameterInfo:
    protocol: str
    domain_parameter: bytes  # AlgorithmIdentifier DER
    parameter_id: int | None = None


@dataclass(frozen=True, slots=True)
class ChipAuthenticationInfo:
    protocol: str
    version: int
    key_id: int | None = None

    @property
    def cipher(self) -> tuple[str, int]:
        return cipher_of(self.protocol)

    def encode(self) -> bytes:
        body = tlv.encode(0x06, encode_oid(self.protocol)) + _int(self.version)
        if self.key_id is not None:
            body += _int(self.key_id)
        return tlv.encode(0x30, body)


@dataclass(frozen=True, slots=True)
class ChipAuthenticationPublicKeyInfo:
    protocol: str
    public_key: bytes  # SubjectPublicKeyInfo DER
    key_id: int | None = None

    def encode(self) -> bytes:
        body = tlv.encode(0x06, encode_oid(self.protocol)) + self.public_key
        if self.key_id is not None:
            body += _int(self.key_id)
        return tlv.encode(0x30, body)


@dataclass(frozen=True, slots=True)
class ActiveAuthenticationInfo:
    protocol: str
    version: int
    signature_algorithm: str | None = None

    def encode(self) -> bytes:
        body = tlv.encode(0x06, encode_oid(self.protocol)) + _int(self.version)
        if self.signature_algorithm:
            body += tlv.encode(0x06, encode_oid(self.signature_algorithm))
        return tlv.encode(0x30, body)


@dataclass(frozen=True, slots=True)
class TerminalAuthenticationInfo:
    protocol: str
    version: int


@dataclass(frozen=True, slots=True)
class UnknownSecurityInfo:
    protocol: str
    der: bytes = field(repr=False)


SecurityInfo = (
    PaceInfo
    | PaceDomainParameterInfo
    | ChipAuthenticationInfo
    | ChipAuthenticationPublicKeyInfo
    | ActiveAuthenticationInfo
    | TerminalAuthenticationInfo
    | UnknownSecurityInfo
)


@dataclass(frozen=True, slots=True)
class SecurityInfos:
    infos: tuple[SecurityInfo, ...]

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [i for i in self.infos if isinstance(i, kind)]

    @property
    def pace(self) -> list[PaceInfo]:
        return self.of(PaceInfo)

    @property
    def chip_authentication(self) -> list[ChipAuthenticationInfo]:
        return self.of(ChipAuthenticationInfo)

    @property
    def chip_authentication_keys(self) -> list[ChipAuthenticationPublicKeyInfo]:
        return self.of(ChipAuthenticationPublicKeyInfo)

    @property
    def active_authentication(self) -> ActiveAuthenticationInfo | None:
        found = self.of(ActiveAuthenticationInfo)
        return found[0] if found else None

    @property
    def terminal_authentication(self) -> bool:
        return bool(self.of(TerminalAuthenticationInfo))


def _parse_one(item: tlv.Tlv) -> SecurityInfo:
    if item.tag != 0x30:
        raise ParseError(f"SecurityInfo is tag {item.tag:X}, not a SEQUENCE")
    parts = item.children()
    if not parts or parts[0].tag != 0x06:
        raise ParseError("SecurityInfo does not start with an OID")
    oid = decode_oid(parts[0].value)
    try:
        known = _parse_known(oid, parts[1:])
    except ParseError:
        known = None
    return known if known is not None else UnknownSecurityInfo(oid, item.encode())


def _optional_int(parts: list[tlv.Tlv], index: int) -> int | None:
    return _read_int(parts[index]) if len(parts) > index else None


def _parse_known(oid: str, rest: list[tlv.Tlv]) -> SecurityInfo | None:  # noqa: PLR0911 - one per kind
    if not rest:
        return None
    depth = oid.count(".")
    if oid.startswith(ID_PACE + ".") and depth == 10:
        return PaceInfo(oid, _read_int(rest[0]), _optional_int(rest, 1))
    if oid.startswith(ID_PACE + ".") and depth == 9 and rest[0].tag == 0x30:
        return PaceDomainParameterInfo(oid, rest[0].encode(), _optional_int(rest, 1))
    if oid.startswith(ID_CA + ".") and depth == 10:
        return ChipAuthenticationInfo(oid, _read_int(rest[0]), _optional_int(rest, 1))
    if oid in (ID_PK_DH, ID_PK_ECDH) and rest[0].tag == 0x30:
        return ChipAuthenticationPublicKeyInfo(oid, rest[0].encode(), _optional_int(rest, 1))
    if oid == ID_AA:
        algorithm = decode_oid(rest[1].value) if len(rest) > 1 and rest[1].tag == 0x06 else None
        return ActiveAuthenticationInfo(oid, _read_int(rest[0]), algorithm)
    if oid == ID_TA:
        return TerminalAuthenticationInfo(oid, _read_int(rest[0]))
    return None


def parse_security_infos(data: bytes) -> SecurityInfos:
    """Parse EF.CardAccess (a bare SET) or DG14 (``6E`` wrapping the SET)."""
    outer = tlv.decode(data)
    if outer.tag == 0x6E:
        outer = tlv.decode(outer.value)
    if outer.tag != 0x31:
        raise TlvError(f"SecurityInfos is tag {outer.tag:X}, not a SET")
    return SecurityInfos(tuple(_parse_one(item) for item in outer.children()))


def encode_security_infos(infos: list[bytes], *, dg14: bool = False) -> bytes:
    """DER SET OF already encoded SecurityInfo SEQUENCEs (sorted); ``dg14`` wraps it in 6E."""
    body = tlv.encode(0x31, b"".join(sorted(infos)))
    return tlv.encode(0x6E, body) if dg14 else body
