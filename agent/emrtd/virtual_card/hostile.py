"""Hostile files a virtual chip can serve instead of its genuine ones (red-team fault switches).

``Faults(hostile="NAME")`` makes ``VirtualChip`` serve the file named below in place of the
image's own; everything else (access control, secure messaging) stays genuine, so the terminal
meets the hostile bytes exactly where a cloned or broken chip would put them:

- ``card-access-4gib``: EF.CardAccess (read before access control) whose TLV header claims
  4 GiB, followed by 64 KiB of filler.
- ``dg2-oversize``: a DG2 of 2 MiB, past the LDS cap.
- ``dg14-huge-prime``: a DG14 key on an explicit curve over a 4423-bit field (a point on it, so
  a terminal that accepts the curve computes on it in pure Python).
- ``dg14-order-1``, ``dg14-even-p``, ``dg14-char2``: explicit parameters with a group order of 1,
  an even "prime", or a characteristic-two field.
- ``dg14-negative-key-id``: a ChipAuthenticationInfo whose key ID is -1.
- ``dg15-huge-exponent``: an RSA Active Authentication key of 16384 bits with a 16383-bit
  public exponent (verifying with it took 27 s in Python).

The chip-authentication key in each DG14 is not the chip's: nothing hostile can succeed.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from asn1crypto import keys
from idstation.agent.emrtd import ec, tlv
from idstation.agent.emrtd.fids import FID_CARD_ACCESS, FID_DG
from idstation.agent.emrtd.lds.security_infos import (
    CA_ECDH_AES_128,
    ID_PK_ECDH,
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
    encode_oid,
    encode_security_infos,
)

FID_DG2, FID_DG14, FID_DG15 = FID_DG[2], FID_DG[14], FID_DG[15]
HUGE_BITS = 4423


def _filler(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _point_bytes(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def explicit_spki(p: int, a: int, n: int, *, field: str = "prime_field", bits: int | None = None) -> bytes:
    """An ECDH SubjectPublicKeyInfo on explicit parameters, with a key point lying on the curve."""
    size = ((bits or p.bit_length()) + 7) // 8
    rnd = random.Random(p % 1_000_003)
    gx, gy, x, y = (rnd.getrandbits(8 * size - 8) for _ in range(4))
    b = (y * y - x * x * x - a * x) % p if p > 1 else 0
    if field == "prime_field":
        field_id = {"field_type": "prime_field", "parameters": p}
    else:
        field_id = {
            "field_type": "characteristic_two_field",
            "parameters": keys.CharacteristicTwo({"m": 163, "basis": "tp_basis", "parameters": 7}),
        }
    domain = keys.SpecifiedECDomain(
        {
            "version": "ecdpVer1",
            "field_id": field_id,
            "curve": {"a": _point_bytes(a % max(p, 2), size), "b": _point_bytes(b, size)},
            "base": b"\x04" + _point_bytes(gx, size) + _point_bytes(gy, size),
            "order": n,
            "cofactor": 1,
        }
    )
    algorithm = {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="specified", value=domain)}
    point = b"\x04" + _point_bytes(x, size) + _point_bytes(y, size)
    return bytes(keys.PublicKeyInfo({"algorithm": algorithm, "public_key": point}).dump())


def dg14_with(spki: bytes, *, key_id: int | None = None) -> bytes:
    """DG14 holding one AES-128 ChipAuthenticationInfo and the given public key."""
    infos = [
        ChipAuthenticationInfo(CA_ECDH_AES_128, 1, key_id).encode(),
        ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, spki, key_id).encode(),
    ]
    return encode_security_infos(infos, dg14=True)


def _negative_key_id_dg14() -> bytes:
    curve = ec.BRAINPOOL_P256R1
    spki = bytes(
        keys.PublicKeyInfo(
            {
                "algorithm": {"algorithm": "ec", "parameters": ("named", "brainpoolp256r1")},
                "public_key": curve.encode_point(curve.g),
            }
        ).dump()
    )
    minus_one = tlv.encode(0x02, b"\xff")
    info = tlv.encode(0x30, tlv.encode(0x06, encode_oid(CA_ECDH_AES_128)) + tlv.encode(0x02, b"\x01") + minus_one)
    key = tlv.encode(0x30, tlv.encode(0x06, encode_oid(ID_PK_ECDH)) + spki + minus_one)
    return encode_security_infos([info, key], dg14=True)


def _huge_prime_dg14() -> bytes:
    p = (1 << HUGE_BITS) - 1 - 2 * random.Random(HUGE_BITS).getrandbits(64)  # odd; primality is irrelevant
    return dg14_with(explicit_spki(p, 3, p - 7))


def _huge_exponent_dg15() -> bytes:
    rnd = random.Random(15)
    n = rnd.getrandbits(16384) | (1 << 16383) | 1
    e = rnd.getrandbits(16383) | (1 << 16382) | 1
    key = keys.RSAPublicKey({"modulus": n, "public_exponent": e})
    spki = keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"}, "public_key": key}).dump()
    return tlv.encode(0x6F, bytes(spki))


HOSTILE_FILES: dict[str, tuple[int, Callable[[], bytes]]] = {
    "card-access-4gib": (FID_CARD_ACCESS, lambda: b"\x31\x84\xff\xff\xff\xff" + _filler(65536, 1)),
    "dg2-oversize": (FID_DG2, lambda: tlv.encode(0x75, _filler(2 * 1024 * 1024, 2))),
    "dg14-huge-prime": (FID_DG14, _huge_prime_dg14),
    "dg14-order-1": (FID_DG14, lambda: dg14_with(explicit_spki(ec.P256.p, ec.P256.a, 1))),
    "dg14-even-p": (FID_DG14, lambda: dg14_with(explicit_spki(ec.P256.p + 1, ec.P256.a, ec.P256.n))),
    "dg14-char2": (FID_DG14, lambda: dg14_with(explicit_spki(2**163, 1, ec.P256.n, field="char2", bits=163))),
    "dg14-negative-key-id": (FID_DG14, _negative_key_id_dg14),
    "dg15-huge-exponent": (FID_DG15, _huge_exponent_dg15),
}


def hostile_files(name: str) -> dict[int, bytes]:
    """FID → content that replaces the genuine file for the hostile switch ``name``."""
    try:
        fid, build = HOSTILE_FILES[name]
    except KeyError:
        raise TypeError(f"no hostile file {name!r}; known: {', '.join(sorted(HOSTILE_FILES))}") from None
    return {fid: build()}
