"""libsodium (the centre: called with the GIL held, or through PyNaCl's binding) and the OpenSSL
fallback (the box) accept and reject the same Ed25519 signatures, including the edge cases RFC 8032
leaves open: small-order and mixed-order keys, small-order R, S >= L, bit flips. The edge signatures
are crafted here with a few lines of textbook Edwards arithmetic (slow, exact, independent of both
libraries)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt import ed25519
from idstation.mqtt.ed25519 import ED25519_BACKEND, verify_openssl, verify_pynacl, verify_signature

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
IDENTITY = (0, 1)
Point = tuple[int, int]


def _add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P


def _mul(k: int, pt: Point) -> Point:
    out = IDENTITY
    while k:
        if k & 1:
            out = _add(out, pt)
        pt, k = _add(pt, pt), k >> 1
    return out


def _x_for(y: int, sign: int) -> int | None:
    """The x of the point with this y (and x's low bit ``sign``), or None (RFC 8032 §5.1.3)."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    if v * x * x % P != u % P:
        return None
    if x == 0 and sign:
        return None
    return x if x & 1 == sign else P - x


def _point(y: int, sign: int = 0) -> Point:
    x = _x_for(y % P, sign)
    assert x is not None
    return x, y % P


def _enc(pt: Point) -> bytes:
    return (pt[1] | (pt[0] & 1) << 255).to_bytes(32, "little")


def _k(r: bytes, a: bytes, msg: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + msg).digest(), "little") % L


B = _point(4 * pow(5, P - 2, P))
T8 = _point(ed25519._Y8)  # a point of order 8
SMALL = [_mul(i, T8) for i in range(8)]  # every point of order dividing 8


def _both(public: bytes, signature: bytes, msg: bytes) -> tuple[bool, bool]:
    """(libsodium, OpenSSL); the held-GIL call and PyNaCl's binding must give libsodium's one verdict."""
    sodium = verify_signature(public, signature, msg)
    assert verify_pynacl is not None and verify_pynacl(public, signature, msg) is sodium
    return sodium, verify_openssl(public, signature, msg)


def test_the_centre_verifies_with_libsodium() -> None:
    # the dev extra includes the central one, which brings PyNaCl
    assert ED25519_BACKEND == "libsodium"
    assert verify_signature is not verify_openssl
    # the call that keeps the GIL (ctypes.PyDLL), not PyNaCl's binding that releases it per call
    assert verify_signature is not verify_pynacl


def _verifier_in_a_fresh_process(setup: str, expected: str) -> str:
    """The backend a fresh interpreter picks after ``setup``; it must be the verifier named ``expected``."""
    code = (
        f"{setup}\n"
        "from idstation.mqtt import ed25519, seal\n"
        f"assert seal.verify_signature is ed25519.{expected}, seal.ED25519_BACKEND\n"
        "print(seal.ED25519_BACKEND)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_where_libsodium_cannot_be_called_directly_pynacls_binding_verifies() -> None:
    setup = "import ctypes\ndef refuse(*args, **kwargs): raise OSError('no such library')\nctypes.PyDLL = refuse"
    assert _verifier_in_a_fresh_process(setup, "verify_pynacl") == "libsodium"


def test_a_long_signed_part_with_zero_bytes_is_verified_whole() -> None:
    # the signed bytes go to C as a pointer and a length: a NUL must not end them
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    msg = b"\x00" * 1000 + os.urandom(1 << 20) + b"\x00" * 1000
    sig = key.sign(msg)
    assert _both(public, sig, msg) == (True, True)
    assert _both(public, sig, msg[:-1] + b"\x01") == (False, False)
    assert _both(public, sig, msg[:-1]) == (False, False)


def test_the_order_8_constant_is_a_point_of_order_8() -> None:
    assert _mul(8, T8) == IDENTITY
    assert _mul(4, T8) != IDENTITY
    assert {pt[1] for pt in SMALL} | {P, P + 1} == ed25519._SMALL_ORDER_Y


def test_honest_signatures_verify_and_every_bit_flip_fails_in_both() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    msg = os.urandom(300)
    sig = key.sign(msg)
    assert _both(public, sig, msg) == (True, True)
    for bit in range(512):
        flipped = bytearray(sig)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert _both(public, bytes(flipped), msg) == (False, False), bit
    for bit in range(0, len(msg) * 8, 7):
        changed = bytearray(msg)
        changed[bit // 8] ^= 1 << (bit % 8)
        assert _both(public, sig, bytes(changed)) == (False, False), bit
    for bit in range(256):
        other = bytearray(public)
        other[bit // 8] ^= 1 << (bit % 8)
        assert _both(bytes(other), sig, msg) == (False, False), bit


def test_s_plus_l_is_rejected_by_both() -> None:
    key = Ed25519PrivateKey.generate()
    public, msg = key.public_key().public_bytes_raw(), b"event"
    sig = key.sign(msg)
    s = int.from_bytes(sig[32:], "little") + L
    assert _both(public, sig[:32] + s.to_bytes(32, "little"), msg) == (False, False)


def _small_order_encodings() -> list[bytes]:
    """All 14 encodings of small-order points: 8 canonical, x's sign bit set where x = 0, and
    y + p for y = 0 and 1."""
    out = {_enc(pt) for pt in SMALL}
    for y in (0, 1, P - 1, P, P + 1):
        for sign in (0, 1):
            out.add((y | sign << 255).to_bytes(32, "little"))
    return sorted(out)


@pytest.mark.parametrize("public", _small_order_encodings(), ids=lambda b: b.hex()[:8] + b.hex()[-2:])
def test_a_small_order_key_verifies_nothing_in_either(public: bytes) -> None:
    # S = 0 and R = -[k]A satisfy the cofactorless equation whenever A decodes at all
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    x = _x_for(y % P, public[31] >> 7)
    signatures = []
    for r in SMALL:
        for n in range(64):
            msg = b"small order key %d" % n
            if x is None or _add(r, _mul(_k(_enc(r), public, msg), (x, y % P))) == IDENTITY:
                signatures.append((_enc(r) + bytes(32), msg))
                break
    assert signatures
    for sig, msg in signatures:
        assert _both(public, sig, msg) == (False, False)


def _mixed_key() -> tuple[int, bytes]:
    a = int.from_bytes(os.urandom(32), "little") % L
    return a, _enc(_add(_mul(a, B), T8))  # A = aB + T8: a mixed-order key only its holder can use


def test_a_small_order_r_under_a_mixed_order_key_is_rejected_by_both() -> None:
    a, public = _mixed_key()
    found = 0
    for r in SMALL[1:]:
        for n in range(64):
            msg = b"small order R %d" % n
            k = _k(_enc(r), public, msg)
            if _add(r, _mul(k, T8)) == IDENTITY:  # R + [k]A = [ka]B: the cofactorless equation holds
                sig = _enc(r) + (k * a % L).to_bytes(32, "little")
                assert _both(public, sig, msg) == (False, False)
                found += 1
                break
    assert found >= 3


def test_a_mixed_order_key_and_r_whose_torsion_cancels_verify_in_both() -> None:
    a, public = _mixed_key()
    rs = int.from_bytes(os.urandom(32), "little") % L
    r_prime = _mul(rs, B)
    verdicts = set()
    for n in range(64):
        msg = b"mixed %d" % n
        for t in SMALL[1:]:
            r = _add(r_prime, t)  # R = rB + T: not of small order
            k = _k(_enc(r), public, msg)
            sig = _enc(r) + ((rs + k * a) % L).to_bytes(32, "little")
            cancels = _add(t, _mul(k, T8)) == IDENTITY
            verdicts.add((cancels, _both(public, sig, msg)))
        if {v[0] for v in verdicts} == {True, False}:
            break
    # cofactorless in both: accepted exactly when the torsion parts cancel, the same in both
    assert verdicts == {(True, (True, True)), (False, (False, False))}


def test_wrong_lengths_are_rejected_by_both() -> None:
    key = Ed25519PrivateKey.generate()
    public, msg = key.public_key().public_bytes_raw(), b"event"
    sig = key.sign(msg)
    assert _both(public[:31], sig, msg) == (False, False)
    assert _both(public, sig[:63], msg) == (False, False)
    assert _both(public, sig + b"\x00", msg) == (False, False)


def test_without_pynacl_the_wire_core_verifies_through_openssl() -> None:
    # a box installs no PyNaCl: seal must import and pick the OpenSSL path
    assert _verifier_in_a_fresh_process("import sys; sys.modules['nacl'] = None", "verify_openssl") == "openssl"


# --- signing (a centre's receipts) -------------------------------------------------------------

_RFC_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")  # RFC 8032 7.1 TEST 2


def test_libsodium_signs_the_rfc_8032_vector() -> None:
    sign = ed25519.sodium_signer(_RFC_SEED)
    assert sign is not None
    assert sign(ed25519._RFC_MSG) == ed25519._RFC_SIG


@pytest.mark.parametrize("size", [0, 1, 64, 300, 65_537])
def test_libsodium_signs_exactly_what_openssl_signs(size: int) -> None:
    for _ in range(8):
        key = Ed25519PrivateKey.generate()
        sign = ed25519.sodium_signer(key.private_bytes_raw())
        assert sign is not None
        message = os.urandom(size) + b"\x00" * (size > 0)  # a zero byte inside: signed whole
        assert sign(message) == key.sign(message)
        assert verify_openssl(key.public_key().public_bytes_raw(), sign(message), message)


def test_a_seed_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ed25519.sodium_signer(b"\x01" * 31)


def test_the_centres_signer_uses_libsodium_and_a_box_signs_through_openssl() -> None:
    from idstation.mqtt.seal import Signer

    key = Ed25519PrivateKey.generate()
    assert Signer(key).sign.__name__ == "sign_sodium"
    code = (
        "import sys; sys.modules['nacl'] = None\n"
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
        "from idstation.mqtt.seal import Signer\n"
        "key = Ed25519PrivateKey.generate(); signer = Signer(key)\n"
        "assert signer.sign(b'receipt') == key.sign(b'receipt')\n"
        "print(getattr(signer.sign, '__name__', 'openssl'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sign"  # cryptography's own method
