"""EF.DG15: the Active Authentication public key (ICAO 9303-10 §4.7.15, 9303-11 §6.1).

``6F L SubjectPublicKeyInfo``: an EC or RSA public key. The raw SubjectPublicKeyInfo (without the
6F wrapper) is accepted too, because some tools store it that way. RSA keys are bounded (modulus
at most ``MAX_RSA_BITS``, an odd exponent at most 2^64): Active Authentication verifies them with
Python's ``pow``, and a hostile chip must not choose how long that takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from idstation.agent.emrtd import tlv
from idstation.agent.errors import ParseError

TAG_DG15 = 0x6F


@dataclass(frozen=True, slots=True)
class Dg15:
    """The chip's AA key. ``kind`` is "ec" or "rsa"; ``key_bits`` the curve or modulus size."""

    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    kind: str
    key_bits: int
    spki: bytes

    def __repr__(self) -> str:
        return f"Dg15(kind={self.kind!r}, key_bits={self.key_bits})"


def parse_dg15(data: bytes) -> Dg15:
    """Parse EF.DG15 (with or without the 6F wrapper) into its public key."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("DG15 must be bytes")
    raw = bytes(data)
    spki = tlv.decode(raw, TAG_DG15).value if raw[:1] == b"\x6f" else raw
    try:
        key = load_der_public_key(spki)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # cryptography's parse failures, unknown keys
        raise ParseError("DG15 does not hold a usable SubjectPublicKeyInfo") from exc
    if isinstance(key, ec.EllipticCurvePublicKey):
        return Dg15(key, "ec", key.curve.key_size, spki)
    if isinstance(key, rsa.RSAPublicKey):
        _check_rsa(key)
        return Dg15(key, "rsa", key.key_size, spki)
    raise ParseError("DG15 key type is not EC or RSA")


MAX_RSA_BITS = 8192  # AA keys are 1024-3072 bits; the terminal verifies in Python (pow), so it is bounded
MAX_RSA_EXPONENT = 2**64  # genuine exponents are 3 or 65537; a 16,000-bit one took 27 s to verify


def _check_rsa(key: rsa.RSAPublicKey) -> None:
    """Refuse an RSA AA key whose verification would cost more than any genuine key (ParseError)."""
    numbers = key.public_numbers()
    if numbers.n.bit_length() > MAX_RSA_BITS:
        raise ParseError(f"DG15 RSA modulus is longer than {MAX_RSA_BITS} bits")
    if not 3 <= numbers.e <= MAX_RSA_EXPONENT or numbers.e % 2 == 0:
        raise ParseError("DG15 RSA public exponent is not an odd number from 3 to 2^64")


def encode_dg15(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    """DG15 for a public key: ``6F L SubjectPublicKeyInfo``."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return tlv.encode(TAG_DG15, spki)
