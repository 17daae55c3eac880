"""Signing and sealing of events: the wire frame.

Theory of operation
-------------------
An event travels as one binary *frame*, signed once on the device and never re-encoded::

    b"IDS1" | key_id_len (1 byte) | key_id (ASCII) | header_len (4 bytes, big-endian)
           | header (JSON, UTF-8, no personal data) | sealed (HPKE ciphertext, may be empty)
           | signature (64 bytes, Ed25519 over every byte before it)

* The signature covers the exact bytes sent (magic, key id, header, ciphertext), so the centre
  verifies what it received, not a re-serialisation.
* ``sealed`` is RFC 9180 HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
  ChaCha20-Poly1305, single shot: ``enc (32 bytes) || ciphertext``. Its ``info`` binds the device
  and the event id (:func:`seal_info`), so a ciphertext cannot be moved to another event.
* The plaintext of ``sealed`` is the JSON of the event's personal part (citizen, face, data
  groups, EF.SOD, ...). The header never holds personal data.

Key ids are derived from the public key (:func:`key_id_for`), so the device, the enrolment tool
and the registry agree without a side channel.

Signatures are checked by libsodium (PyNaCl, the ``central`` extra: ~60 us per frame against
~115 us for OpenSSL through ``cryptography`` on the bench host) where it is installed, else by
OpenSSL (a box checks a few receipts and needs no extra library). Both apply libsodium's rule
(:func:`verify_openssl`), so a signature is accepted by one exactly when the other accepts it.
The verifiers live in :mod:`idstation.mqtt.ed25519` (libsodium is called with the GIL held: why
is said there); this module re-exports them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from idstation.mqtt.ed25519 import (
    ED25519_BACKEND,
    SIGNATURE_LEN,
    Verify,
    sodium_signer,
    verify_openssl,
    verify_signature,
)
from idstation.mqtt.errors import SealError

MAGIC = b"IDS1"
HPKE_SUITE_NAME = "DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/ChaCha20-Poly1305"
MAX_FRAME = 4 * 1024 * 1024  # an identity event with a face is ~20-40 KB; anything huge is hostile
MAX_HEADER = 16 * 1024  # a clear header is a few hundred bytes; status info a few KB at most
MAX_HEADER_DEPTH = 8  # header {} > info {} > a little structure
MAX_SEALED_DEPTH = 16  # the personal part: citizen, verification and QR objects, a few levels each

__all__ = [
    "ED25519_BACKEND",
    "HPKE_SUITE_NAME",
    "MAX_FRAME",
    "MAX_HEADER",
    "SIGNATURE_LEN",
    "Frame",
    "Signer",
    "Verify",
    "decode_frame",
    "ed25519_raw",
    "encode_frame",
    "json_depth",
    "key_id_for",
    "load_central_private_key",
    "load_central_public_key",
    "load_signing_key",
    "load_verify_key",
    "loads_bounded",
    "open_private",
    "seal_info",
    "seal_private",
    "verify_frame",
    "verify_openssl",
    "verify_signature",
]


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """The key id of an Ed25519 public key: ``ed25519:`` + 16 hex digits of SHA-256(raw key)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


# --- key files -----------------------------------------------------------------------------------


def _read_pem(source: str | bytes | Path) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode("ascii")
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise SealError(f"cannot read key file {source}: {exc.strerror}") from None


def _load_key(source: str | bytes | Path, *, private: bool, expected: type, what: str) -> Any:
    """A PEM key of type ``expected`` (private PKCS#8 or public SubjectPublicKeyInfo), else SealError."""
    pem = _read_pem(source)
    try:
        key = (
            serialization.load_pem_private_key(pem, password=None)
            if private
            else serialization.load_pem_public_key(pem)
        )
    except (ValueError, TypeError) as exc:
        kind = "an unencrypted PEM private key" if private else "a PEM public key"
        raise SealError(f"not {kind}: {type(exc).__name__}") from None
    if not isinstance(key, expected):
        raise SealError(
            f"the {what} is not an {expected.__name__.removesuffix('PrivateKey').removesuffix('PublicKey')} key"
        )
    return key


def load_signing_key(source: str | bytes | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PKCS#8 PEM file (or PEM text/bytes)."""
    key: Ed25519PrivateKey = _load_key(source, private=True, expected=Ed25519PrivateKey, what="signing key")
    return key


def load_verify_key(source: str | bytes | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) text, bytes or file."""
    key: Ed25519PublicKey = _load_key(source, private=False, expected=Ed25519PublicKey, what="device key")
    return key


def load_central_private_key(source: str | bytes | Path) -> X25519PrivateKey:
    """The central X25519 private key, PKCS#8 PEM as ``openssl genpkey -algorithm X25519`` writes it."""
    key: X25519PrivateKey = _load_key(source, private=True, expected=X25519PrivateKey, what="central key")
    return key


def load_central_public_key(source: str | bytes | Path) -> X25519PublicKey:
    """The central X25519 public key (PEM SubjectPublicKeyInfo), the HPKE recipient on devices."""
    key: X25519PublicKey = _load_key(source, private=False, expected=X25519PublicKey, what="central public key")
    return key


# --- HPKE ---------------------------------------------------------------------------------------


@functools.cache
def _suite() -> Any:
    from cryptography.hazmat.primitives import hpke

    return hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def seal_info(device_id: str, event_id: str) -> bytes:
    """HPKE ``info``: binds the ciphertext to one device and one event."""
    return b"idstation/v1 event\x00" + device_id.encode("utf-8") + b"\x00" + event_id.encode("ascii")


def seal_private(private: dict[str, Any], recipient: X25519PublicKey, device_id: str, event_id: str) -> bytes:
    """Encrypt the personal part of an event to the central server (``enc || ciphertext``)."""
    try:
        plaintext = json.dumps(private, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise SealError(f"the personal part is not JSON-serialisable: {type(exc).__name__}") from None
    return _suite().encrypt(plaintext, recipient, info=seal_info(device_id, event_id))


def open_private(sealed: bytes, key: X25519PrivateKey, device_id: str, event_id: str) -> dict[str, Any]:
    """Decrypt and parse the personal part; any failure is a :class:`SealError` without details."""
    try:
        plaintext = _suite().decrypt(sealed, key, info=seal_info(device_id, event_id))
    except (InvalidTag, ValueError, TypeError):
        raise SealError("the sealed part does not decrypt for this device and event") from None
    value = loads_bounded(plaintext, max_bytes=MAX_FRAME, max_depth=MAX_SEALED_DEPTH, what="the sealed part")
    if not isinstance(value, dict):
        raise SealError("the sealed part is not a JSON object")
    return value


# --- frames -------------------------------------------------------------------------------------


class Signer:
    """An Ed25519 signing key with its key id."""

    def __init__(self, key: Ed25519PrivateKey, key_id: str | None = None) -> None:
        self.key = key
        self.key_id = key_id or key_id_for(key.public_key())
        if not self.key_id.isascii() or not 0 < len(self.key_id) < 256:
            raise SealError("a key id is 1-255 ASCII characters")
        self.sign: Callable[[bytes], bytes] = _fastest_sign(key)
        """``sign(data) -> signature``: libsodium where PyNaCl is installed (the centre), else OpenSSL."""

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"


def _fastest_sign(key: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    """libsodium's signer for ``key`` when it signs a probe exactly as OpenSSL does, else OpenSSL's."""
    try:
        seed = key.private_bytes_raw()
    except (AttributeError, ValueError):  # a key held where its bytes cannot be read (an HSM's)
        return key.sign
    sign = sodium_signer(seed)
    probe = b"idstation signer probe"
    if sign is None or sign(probe) != key.sign(probe):
        return key.sign
    return sign


@dataclass(frozen=True, slots=True)
class Frame:
    """A split (not yet verified) frame. Its header is parsed only on demand (:attr:`header`),
    so a receiver checks the signature before it parses anything of the header but its length."""

    key_id: str
    header_bytes: bytes
    sealed: bytes
    signed_part: bytes
    signature: bytes

    @property
    def header(self) -> dict[str, Any]:
        """The header as a JSON object (bounded in size and depth), or :class:`SealError`."""
        value = loads_bounded(self.header_bytes, max_bytes=MAX_HEADER, max_depth=MAX_HEADER_DEPTH, what="frame header")
        if not isinstance(value, dict):
            raise SealError("frame header is not a JSON object")
        return value

    def __repr__(self) -> str:
        return f"Frame(key_id={self.key_id!r}, header_len={len(self.header_bytes)}, sealed_len={len(self.sealed)})"


# a string, or an unterminated one to the end: every match attempt succeeds, so the scan is linear
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, strings skipped; no recursion, linear time."""
    depth = deepest = 0
    for byte in _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", data)):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("duplicate key")  # two readers could see two different objects
    return value


# one decoder for every call (json.loads with arguments builds a new one each time)
_STRICT_JSON = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=_unique_keys)
_SCAN = _STRICT_JSON.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__, not in its stub
_SPACE = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]  # the decoder's own rule: JSON's whitespace


def _strict_decode(text: str) -> Any:
    """``_STRICT_JSON.decode(text)`` (the same value, a ValueError where it fails) without its
    two whitespace scans when the text neither starts nor ends with whitespace (compact JSON)."""
    start = _SPACE(text, 0).end() if text[:1] in " \t\n\r" else 0  # "" too: the scan then fails
    try:
        value, end = _SCAN(text, start)
    except StopIteration:
        raise ValueError("expecting a value") from None
    if end != len(text) and _SPACE(text, end).end() != len(text):
        raise ValueError("extra data")
    return value


def loads_bounded(data: bytes, *, max_bytes: int, max_depth: int, what: str) -> Any:
    """Parse untrusted JSON with a size and a nesting cap checked before the parser runs.

    Also refused: invalid UTF-8, ``NaN``/``Infinity``, duplicate keys. Every failure is a
    :class:`SealError` naming ``what``, never the content.
    """
    if len(data) > max_bytes:
        raise SealError(f"{what} too large")
    # the depth is at most the number of opening brackets (two counts in C): the string-aware
    # scan runs only when that bound does not already settle it (a few per cent of the check)
    if data.count(b"{") + data.count(b"[") > max_depth and json_depth(data) > max_depth:
        raise SealError(f"{what} nested too deeply")
    try:
        return _strict_decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SealError(f"{what} is not valid JSON") from None


def encode_frame(header: dict[str, Any], sealed: bytes, signer: Signer) -> bytes:
    """Serialise and sign one frame."""
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    key_id = signer.key_id.encode("ascii")
    body = MAGIC + bytes([len(key_id)]) + key_id + struct.pack(">I", len(header_bytes)) + header_bytes + sealed
    return body + signer.sign(body)


_HEADER_LEN = struct.Struct(">I").unpack_from
_SHORTEST = len(MAGIC) + 1 + 4 + SIGNATURE_LEN


def decode_frame(data: bytes) -> Frame:
    """Split a frame into its parts; malformed input is a :class:`SealError`."""
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("decode_frame takes bytes")
        data = bytes(data)
    size = len(data)
    if size > MAX_FRAME:
        raise SealError("frame too large")
    if size < _SHORTEST or not data.startswith(MAGIC):
        raise SealError("not an idstation frame")
    kid_end = len(MAGIC) + 1 + data[len(MAGIC)]
    if size < kid_end + 4 + SIGNATURE_LEN:
        raise SealError("truncated frame")
    (header_len,) = _HEADER_LEN(data, kid_end)
    pos, end = kid_end + 4, size - SIGNATURE_LEN
    if pos + header_len > end:
        raise SealError("truncated frame header")
    if header_len > MAX_HEADER:
        raise SealError("frame header too large")
    try:
        key_id = data[len(MAGIC) + 1 : kid_end].decode("ascii")
    except UnicodeDecodeError:
        raise SealError("frame key id is not ASCII") from None
    if not key_id.isprintable():
        raise SealError("frame key id is not printable")
    return Frame(key_id, data[pos : pos + header_len], data[pos + header_len : end], data[:end], data[end:])


# --- Ed25519 verification (mqtt/ed25519.py) ----------------------------------------------------


def ed25519_raw(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key (what the verifiers take)."""
    return key.public_bytes_raw()


def verify_frame(frame: Frame, public_key: Ed25519PublicKey | bytes, verify: Verify | None = None) -> None:
    """Check the Ed25519 signature over the exact received bytes, or raise :class:`SealError`.

    ``public_key`` is a key or its 32 raw bytes (a registry record keeps them); ``verify`` the
    verifier (default :data:`verify_signature`)."""
    raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
    if not (verify or verify_signature)(raw, frame.signature, frame.signed_part):
        raise SealError("bad signature")
