"""Ed25519 verification for the wire format: one verdict, the fastest verifier installed.

Theory of operation
-------------------
A frame's signature is checked by libsodium where PyNaCl (the ``central`` extra) is installed,
else by OpenSSL through ``cryptography`` (a box checks a few receipts and needs no extra library).
RFC 8032 leaves some edge cases to the verifier; :func:`verify_openssl` applies libsodium's rules
before OpenSSL's check, so a signature is accepted by one exactly when the other accepts it
(tests/unit/mqtt/test_ed25519.py crafts the edge cases).

libsodium is called with the GIL held. PyNaCl's binding (cffi) releases the GIL around every call;
in a listener, whose check thread verifies while its transport and commit threads wait on sockets,
each release became a hand-over of the GIL between threads, and the check thread's CPU per event
rose from ~110 us alone to ~150-170 us beside a busy thread (bench/check_path.py ``contended``).
A 60 us call holding the GIL costs the other threads at most that long; they only need it for
Python code. So :func:`verify_signature` calls ``crypto_sign_verify_detached`` of the libsodium
PyNaCl loaded, through :class:`ctypes.PyDLL` (which keeps the GIL). Where that library does not
export the function, PyNaCl's own ``crypto_sign_open`` is used (the same libsodium check, with
the GIL released). Both are checked against the RFC 8032 vector when this module loads.

The centre also signs (a receipt per stream and interval): :func:`sodium_signer` is libsodium's
``crypto_sign_detached`` the same way, about half OpenSSL's cost here. Ed25519 signing is
deterministic, so it produces the very bytes OpenSSL would; :class:`~.seal.Signer` checks that
once per key and otherwise signs through OpenSSL (a box, which has no PyNaCl, always does).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "ED25519_BACKEND",
    "SIGNATURE_LEN",
    "Verify",
    "sodium_signer",
    "verify_openssl",
    "verify_pynacl",
    "verify_signature",
]

SIGNATURE_LEN = 64

Verify = Callable[[bytes, bytes, bytes], bool]
"""``verify(public_raw, signature, signed) -> bool``: the 32-byte key, the 64-byte signature."""

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022  # an order-8 point's y
# The y of every point of order 1, 2, 4 or 8, and the two non-canonical aliases (p, p+1) of 0 and 1:
# libsodium's blocklist (ge25519_has_small_order), which ignores the sign bit of x.
_SMALL_ORDER_Y = frozenset({0, 1, _Y8, _P - _Y8, _P - 1, _P, _P + 1})
_Y_MASK = (1 << 255) - 1

# RFC 8032, section 7.1, TEST 2: one message byte, to check a verifier when it is loaded
_RFC_KEY = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
_RFC_MSG = b"\x72"
_RFC_SIG = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def _edge_rejected(public_raw: bytes, signature: bytes) -> bool:
    """What libsodium refuses before the curve equation (RFC 8032 leaves it to the verifier):
    ``S`` >= L, a public key encoded with y >= p or of small order, an ``R`` of small order."""
    a_y = int.from_bytes(public_raw, "little") & _Y_MASK
    r_y = int.from_bytes(signature[:32], "little") & _Y_MASK
    return int.from_bytes(signature[32:], "little") >= _L or a_y >= _P or a_y in _SMALL_ORDER_Y or r_y in _SMALL_ORDER_Y


@functools.lru_cache(maxsize=65536)
def _openssl_key(public_raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_raw)


def verify_openssl(public_raw: bytes, signature: bytes, signed: bytes) -> bool:
    """Ed25519 through OpenSSL, with libsodium's edge rules applied first. Both then check the
    cofactorless equation [S]B = R + [k]A by comparing R's encoding, so they agree on every
    signature (tests/unit/mqtt/test_ed25519.py crafts the edge cases)."""
    if len(public_raw) != 32 or len(signature) != SIGNATURE_LEN or _edge_rejected(public_raw, signature):
        return False
    try:
        _openssl_key(public_raw).verify(signature, signed)
    except (InvalidSignature, ValueError):
        return False
    return True


def _works(verify: Verify) -> bool:
    """The RFC vector verifies, and with one bit changed it does not."""
    forged = bytes([_RFC_SIG[0] ^ 1]) + _RFC_SIG[1:]
    return verify(_RFC_KEY, _RFC_SIG, _RFC_MSG) and not verify(_RFC_KEY, forged, _RFC_MSG)


def _pynacl_verifier() -> Verify | None:
    """PyNaCl's crypto_sign_open (the signature, then the signed bytes; the GIL released)."""
    try:
        from nacl.bindings import crypto_sign_open
        from nacl.exceptions import BadSignatureError
    except ImportError:
        return None

    def verify_pynacl(public_raw: bytes, signature: bytes, signed: bytes) -> bool:
        if len(public_raw) != 32 or len(signature) != SIGNATURE_LEN:
            return False
        try:
            crypto_sign_open(signature + signed, public_raw)
        except BadSignatureError:
            return False
        return True

    return verify_pynacl


@functools.cache
def _sodium() -> ctypes.PyDLL | None:
    """The libsodium PyNaCl loaded, to be called with the GIL held; None without PyNaCl."""
    try:
        import nacl._sodium as sodium  # PyNaCl's extension: libsodium linked in, initialised on import
        import nacl.bindings  # noqa: F401  (runs sodium_init)
    except ImportError:
        return None
    try:
        return ctypes.PyDLL(sodium.__file__)
    except OSError:
        return None


def _held_gil_verifier() -> Verify | None:
    """``crypto_sign_verify_detached`` of the libsodium PyNaCl loaded, called with the GIL held."""
    try:
        function = _sodium().crypto_sign_verify_detached  # type: ignore[union-attr]
    except AttributeError:  # no libsodium, or it does not export the function
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    function.restype = ctypes.c_int

    def verify_sodium(public_raw: bytes, signature: bytes, signed: bytes) -> bool:
        # c_char_p takes a bytes object's own buffer (no copy); every length is checked here
        if len(public_raw) != 32 or len(signature) != SIGNATURE_LEN:
            return False
        return bool(function(bytes(signature), bytes(signed), len(signed), bytes(public_raw)) == 0)

    return verify_sodium


verify_pynacl = _pynacl_verifier()
"""PyNaCl's own binding (the GIL released), or None without PyNaCl: the fallback."""


def _fastest() -> tuple[Verify, str]:
    for verify in (_held_gil_verifier(), verify_pynacl):
        if verify is not None and _works(verify):
            return verify, "libsodium"
    return verify_openssl, "openssl"


verify_signature, ED25519_BACKEND = _fastest()
"""The fastest verifier installed (libsodium when PyNaCl is there, else OpenSSL: the same verdicts),
and its name."""


def sodium_signer(seed: bytes) -> Callable[[bytes], bytes] | None:
    """``sign(message) -> signature`` with the Ed25519 key of this 32-byte seed, by libsodium's
    ``crypto_sign_detached`` with the GIL held (a centre signs a receipt per stream and interval:
    ~20 us against ~36 us through OpenSSL here); None without libsodium. Ed25519 signatures are
    deterministic (RFC 8032), so it signs exactly what OpenSSL would: :class:`~.seal.Signer`
    compares the two once before using it."""
    library = _sodium()
    try:
        keypair, detached = library.crypto_sign_seed_keypair, library.crypto_sign_detached  # type: ignore[union-attr]
    except AttributeError:
        return None
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    public, secret = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    if keypair(public, secret, seed) != 0:
        return None
    detached.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    detached.restype = ctypes.c_int

    def sign_sodium(message: bytes) -> bytes:
        signature = ctypes.create_string_buffer(SIGNATURE_LEN)
        if detached(signature, None, bytes(message), len(message), secret) != 0:
            raise ValueError("libsodium could not sign")
        return signature.raw

    return sign_sodium
