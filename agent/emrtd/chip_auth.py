"""Chip Authentication v1 with ECDH (ICAO 9303-11 §6.2), terminal side, sans-IO.

Theory of operation: DG14 holds the chip's static CA public key (ChipAuthenticationPublicKeyInfo,
id-PK-ECDH with a SubjectPublicKeyInfo, named or explicit domain parameters) and, usually, a
ChipAuthenticationInfo naming the cipher (id-CA-ECDH-3DES-CBC-CBC, -AES-CBC-CMAC-128/192/256); no
ChipAuthenticationInfo means 3DES (CA v1). The terminal makes an ephemeral key pair on the same
curve and sends its public key inside the current secure messaging:

- AES: MSE:Set AT (``00 22 41 A4``, 80 = protocol OID, 84 = key ID if any), then GENERAL
  AUTHENTICATE (``00 86 00 00``, 7C{80 = ephemeral public key}) answered by an empty 7C;
- 3DES: MSE:Set KAT (``00 22 41 A6``, 91 = ephemeral public key, 84 = key ID if any).

Both sides compute K = x(SK_eph · PK_chip) and restart secure messaging with KS_enc = KDF(K, 1),
KS_mac = KDF(K, 2), SSC = 0. The proof is implicit: only a chip holding the private key can MAC
the next response; ``ChipSession.chip_authenticate`` sends that next command and reports
``ChipAuthResult``: "ok", "failed" (chip refused, or the next response did not verify) or
"not_supported" (no usable CA key in DG14).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idstation.agent.emrtd import crypto, ec, tlv
from idstation.agent.emrtd.apdu import CommandApdu
from idstation.agent.emrtd.lds.security_infos import (
    CA_ECDH_3DES,
    ID_CA,
    ID_PK_ECDH,
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
    SecurityInfos,
    UnknownSecurityInfo,
    cipher_of,
    encode_oid,
)
from idstation.agent.emrtd.pace import random_scalar
from idstation.agent.emrtd.sm import SecureMessaging
from idstation.agent.errors import ParseError

Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class ChipAuthResult:
    result: str  # "ok" | "failed" | "not_supported"
    protocol: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"result": self.result}
        if self.protocol:
            out["protocol"] = self.protocol
        if self.reason:
            out["reason"] = self.reason
        return out


def public_key_point(info: ChipAuthenticationPublicKeyInfo) -> tuple[ec.Curve, ec.Point]:
    """The curve and point of an id-PK-ECDH SubjectPublicKeyInfo (named or explicit parameters).

    Only the curves ICAO 9303 standardizes are accepted (``ec.find_curve``): a chip cannot make
    the terminal compute on a curve of its choosing. Every failure is a ``ParseError``.
    """
    from asn1crypto import keys

    if info.protocol != ID_PK_ECDH:
        raise ParseError("chip authentication key is not an ECDH key")
    try:
        spki = keys.PublicKeyInfo.load(info.public_key, strict=True)
        params = spki["algorithm"]["parameters"]
        if params.name == "named":
            name = params.chosen.native
            if name not in ec.BY_NAME:
                raise ParseError("chip authentication key is on a curve this terminal does not implement")
            curve = ec.BY_NAME[name]
        elif params.name == "specified":
            curve = _explicit_curve(params.chosen)
        else:
            raise ParseError("implicit EC parameters are not supported")
        point_bytes = spki["public_key"].native
    except ParseError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        raise ParseError(f"chip authentication public key is malformed ({type(exc).__name__})") from None
    if not isinstance(point_bytes, bytes):
        raise ParseError("chip authentication public key is malformed (no point)")
    return curve, curve.decode_point(point_bytes)


def _explicit_curve(domain: Any) -> ec.Curve:
    """The named curve explicit parameters describe; checked field by field, cheapest first."""
    field_id = domain["field_id"]
    if field_id["field_type"].native != "prime_field":
        raise ParseError("explicit EC parameters are not over a prime field")
    p = field_id["parameters"].native
    if not isinstance(p, int) or p not in _PRIMES:
        raise ParseError("explicit EC parameters name no curve ICAO 9303 allows")
    a = int.from_bytes(domain["curve"]["a"].native, "big")
    b = int.from_bytes(domain["curve"]["b"].native, "big")
    base = bytes(domain["base"].native)
    size = (p.bit_length() + 7) // 8
    if len(base) != 1 + 2 * size or base[0] != 4:
        raise ParseError("explicit EC base point is not uncompressed")
    g = (int.from_bytes(base[1 : 1 + size], "big"), int.from_bytes(base[1 + size :], "big"))
    cofactor = domain["cofactor"].native
    return ec.find_curve(p, a, b, g, domain["order"].native, h=1 if cofactor is None else cofactor)


_PRIMES = frozenset(curve.p for curve in ec.STANDARD_PARAMETERS.values())


def choose(infos: SecurityInfos) -> tuple[ChipAuthenticationInfo, ChipAuthenticationPublicKeyInfo] | None:
    """The first ECDH CA key with a matching (or implied 3DES) ChipAuthenticationInfo."""
    keys = [k for k in infos.chip_authentication_keys if k.protocol == ID_PK_ECDH]
    for key in keys:
        for info in infos.chip_authentication:
            same_id = info.key_id is None or key.key_id is None or info.key_id == key.key_id
            if same_id and ".2.2.3.2." in info.protocol:
                return info, key
    if keys and not infos.chip_authentication and not _unreadable_ca_info(infos):
        return ChipAuthenticationInfo(CA_ECDH_3DES, 1, keys[0].key_id), keys[0]
    return None


def _unreadable_ca_info(infos: SecurityInfos) -> bool:
    """A ChipAuthenticationInfo is there but unreadable (e.g. a negative key ID): imply nothing."""
    return any(isinstance(i, UnknownSecurityInfo) and i.protocol.startswith(ID_CA + ".") for i in infos.infos)


class ChipAuthentication:
    """Terminal side: ``commands()`` to send under the current SM, then ``secure_messaging()``."""

    def __init__(
        self,
        info: ChipAuthenticationInfo,
        key: ChipAuthenticationPublicKeyInfo,
        *,
        rng: Rng = os.urandom,
        eph_sk: int | None = None,
    ) -> None:
        self.info = info
        algorithm, bits = cipher_of(info.protocol)
        self.cipher = crypto.SmCipher(algorithm, bits)
        self.curve, self._chip_point = public_key_point(key)
        self._sk = eph_sk or random_scalar(self.curve, rng)
        self.public_key = self.curve.encode_point(self.curve.multiply_base(self._sk))

    def commands(self) -> list[CommandApdu]:
        key_ref = tlv.encode(0x84, _int_bytes(self.info.key_id)) if self.info.key_id is not None else b""
        if self.cipher.algorithm == "3DES":
            return [CommandApdu(0x00, 0x22, 0x41, 0xA6, tlv.encode(0x91, self.public_key) + key_ref)]
        mse = CommandApdu(0x00, 0x22, 0x41, 0xA4, tlv.encode(0x80, encode_oid(self.info.protocol)) + key_ref)
        ga = CommandApdu(0x00, 0x86, 0x00, 0x00, tlv.encode(0x7C, tlv.encode(0x80, self.public_key)), ne=256)
        return [mse, ga]

    def secure_messaging(self) -> SecureMessaging:
        k = self.curve.shared_x(self._sk, self._chip_point)
        return SecureMessaging(self.cipher, self.cipher.derive(k, 1), self.cipher.derive(k, 2), 0)


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
