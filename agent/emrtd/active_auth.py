"""Active Authentication (ICAO 9303-11 §6.1): the chip proves it holds the private key of DG15.

Terminal side: send INTERNAL AUTHENTICATE with an 8-byte challenge (RND.IFD), then
``verify_active(dg15, challenge, signature)``. Chip side (the virtual chip): ``sign_challenge``.

Proof of presence (issue 13): the box makes the identity event's id BEFORE it reads the chip and
uses ``challenge_for(event_id)`` (the first 8 bytes of SHA-256 over the event id) as the
challenge, then forwards the chip's signature in the event. The centre derives the same
challenge from the event id it receives and checks the signature against DG15: a signature
made for another event (data read earlier and replayed) does not verify.

- ECDSA (§6.1.2): the signature is the plain concatenation r ‖ s (BSI TR-03111 "plain" format).
  The hash is the one named by ActiveAuthenticationInfo in DG14 when the caller passes it
  (``hash_name``); otherwise we start with the hash matching the key size (≤256 bits: SHA-256,
  384: SHA-384, larger: SHA-512) and then try SHA-1/224/256/384/512, because chips in the field
  use any of them and DG14 often omits ActiveAuthenticationInfo. Accepting any standard hash
  does not weaken the proof: a forger would still need a valid signature over our fresh
  challenge under the chip's key.
- RSA (§6.1.2.1): ISO/IEC 9796-2 digital signature scheme 1, partial message recovery.
  The recovered representative is ``6A ‖ M1 ‖ H(M1 ‖ challenge) ‖ trailer`` where the trailer
  ``BC`` means SHA-1 and ``xx CC`` names the hash (33 SHA-1, 34 SHA-256, 35 SHA-512, 36 SHA-384).
  The chip signs with SHA-1/BC; the verifier accepts every trailer above.

The verdict is data (never an exception on bad cryptographic input).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from idstation.agent.emrtd.lds.dg15 import Dg15, parse_dg15
from idstation.agent.errors import ParseError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_TRAILER_HASH = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384"}
CHALLENGE_SIZE = 8  # RND.IFD (9303-11 §6.1)


def challenge_for(event_id: str) -> bytes:
    """The AA challenge bound to an event: the first 8 bytes of SHA-256 over the event id (ASCII)."""
    if not isinstance(event_id, str) or not event_id:
        raise TypeError("challenge_for needs the event id (a non-empty string)")
    return hashlib.sha256(event_id.encode("utf-8")).digest()[:CHALLENGE_SIZE]


@dataclass(frozen=True, slots=True)
class ActiveVerdict:
    """``result`` is "ok", "failed" or "not_supported"."""

    result: str
    algorithm: str | None = None
    hash: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result}
        if self.algorithm:
            out["algorithm"] = self.algorithm
        if self.hash:
            out["hash"] = self.hash
        if self.reason:
            out["reason"] = self.reason
        return out


def _ec_hash_for(key_bits: int) -> str:
    if key_bits <= 256:
        return "sha256"
    if key_bits <= 384:
        return "sha384"
    return "sha512"


def sign_challenge(private_key: Any, challenge: bytes, *, hash_name: str | None = None) -> bytes:
    """Chip side of INTERNAL AUTHENTICATE: sign ``challenge`` with the AA private key.

    EC keys give plain r ‖ s over the hash matching the key size; RSA keys give an
    ISO/IEC 9796-2 scheme 1 signature with SHA-1 (trailer BC).
    """
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        name = hash_name or _ec_hash_for(private_key.curve.key_size)
        der = private_key.sign(bytes(challenge), ec.ECDSA(_HASHES[name]()))
        r, s = decode_dss_signature(der)
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if isinstance(private_key, rsa.RSAPrivateKey):
        return _sign_9796_2(private_key, bytes(challenge))
    raise TypeError("AA key must be an EC or RSA private key")


def _digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(_HASHES[name]())
    h.update(data)
    return h.finalize()


def _sign_9796_2(key: rsa.RSAPrivateKey, challenge: bytes) -> bytes:
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    m1 = os.urandom(k - 20 - 2)
    f = b"\x6a" + m1 + _digest("sha1", m1 + challenge) + b"\xbc"
    value = int.from_bytes(f, "big")
    if value >= n:  # the top byte 6A is below any full-size modulus' top byte only when bits % 8 == 0
        raise TypeError("RSA AA key size must be a multiple of 8 bits")
    return pow(value, numbers.d, n).to_bytes(k, "big")


def verify_active(
    dg15: bytes | Dg15, challenge: bytes, signature: bytes, *, hash_name: str | None = None
) -> ActiveVerdict:
    """Check the chip's INTERNAL AUTHENTICATE answer ``signature`` over our ``challenge``."""
    if not dg15:
        return ActiveVerdict("not_supported", reason="no DG15")
    try:
        parsed = dg15 if isinstance(dg15, Dg15) else parse_dg15(dg15)
    except ParseError:
        return ActiveVerdict("failed", reason="DG15 is malformed")
    if hash_name is not None and hash_name not in _HASHES:
        return ActiveVerdict("not_supported", reason="unsupported AA hash")
    if isinstance(parsed.public_key, ec.EllipticCurvePublicKey):
        return _verify_ecdsa(parsed.public_key, bytes(challenge), bytes(signature), hash_name)
    return _verify_9796_2(parsed.public_key, bytes(challenge), bytes(signature))


def _ecdsa_forms(key: ec.EllipticCurvePublicKey, signature: bytes) -> list[bytes]:
    """DER encodings to try: the plain r ‖ s form ICAO specifies, then DER as some chips send."""
    forms = []
    size = (key.curve.key_size + 7) // 8
    if signature and len(signature) % 2 == 0 and len(signature) <= 2 * size + 2:
        half = len(signature) // 2
        r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        forms.append(encode_dss_signature(r, s))
    if signature[:1] == b"\x30":
        try:
            decode_dss_signature(signature)
        except ValueError:
            pass
        else:
            forms.append(signature)
    return forms


def _verify_ecdsa(
    key: ec.EllipticCurvePublicKey, challenge: bytes, signature: bytes, hash_name: str | None
) -> ActiveVerdict:
    forms = _ecdsa_forms(key, signature)
    if not forms:
        return ActiveVerdict("failed", "ecdsa", reason="signature is not r||s")
    first = hash_name or _ec_hash_for(key.curve.key_size)
    order = [first] + ([] if hash_name else [h for h in _HASHES if h != first])
    for name in order:
        for der in forms:
            try:
                key.verify(der, challenge, ec.ECDSA(_HASHES[name]()))
            except InvalidSignature:
                continue
            return ActiveVerdict("ok", "ecdsa", name)
    return ActiveVerdict("failed", "ecdsa", reason="signature does not verify")


def _verify_9796_2(key: rsa.RSAPublicKey, challenge: bytes, signature: bytes) -> ActiveVerdict:
    numbers = key.public_numbers()
    n, e = numbers.n, numbers.e
    k = (n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    if len(signature) != k or s >= n:
        return ActiveVerdict("failed", "rsa-iso9796-2", reason="signature has the wrong size")
    m = pow(s, e, n)
    if m & 0xF != 0xC:  # the alternative representative n - m (ISO/IEC 9796-2 with min(s, n - s))
        m = n - m
    f = m.to_bytes(k, "big")
    if f[-1] == 0xBC:
        name, trailer = "sha1", 1
    elif f[-1] == 0xCC and f[-2] in _TRAILER_HASH:
        name, trailer = _TRAILER_HASH[f[-2]], 2
    else:
        return ActiveVerdict("failed", "rsa-iso9796-2", reason="unknown trailer")
    size = _HASHES[name]().digest_size
    if f[0] & 0xC0 != 0x40 or f[0] & 0x20 == 0 or len(f) < size + trailer + 1:
        return ActiveVerdict("failed", "rsa-iso9796-2", name, reason="bad header")
    start = 1 if f[0] & 0x0F == 0x0A else 0  # header 6A; otherwise padding runs into the next byte
    if start == 0:
        return ActiveVerdict("failed", "rsa-iso9796-2", name, reason="unsupported padding")
    m1 = f[start : k - size - trailer]
    digest = f[k - size - trailer : k - trailer]
    if _digest(name, m1 + challenge) != digest:
        return ActiveVerdict("failed", "rsa-iso9796-2", name, reason="signature does not verify")
    return ActiveVerdict("ok", "rsa-iso9796-2", name)
