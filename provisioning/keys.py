"""The device's two keys, made on the device: Ed25519 (signs events) and P-256 (mTLS client).

Keys never leave the box: only public keys and fingerprints are shown or sent. ``KeyStore`` is the
seam where a secure element (ATECC608, a TPM through an OpenSSL provider) can replace the PEM
files later: the rest of provisioning only asks a store for its public keys, for Ed25519
signatures and for an ECDSA key object that signs the CSR.

Names (stated in docs/provisioning.md):
- ``key_id``    = ``"ed25519:"`` + first 16 hex chars of SHA-256(raw 32-byte Ed25519 public key)
  (the same as ``idstation.mqtt.seal.key_id_for``, so box, enrolment and registry agree)
- ``device_id`` = ``"ids-"`` + first 16 hex chars of the same hash
- TLS key fingerprint = SHA-256 hex of the P-256 key's DER SubjectPublicKeyInfo
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from idstation.mqtt.enrolment.ids import device_id_for, key_id_for, raw_public, spki_fingerprint
from idstation.provisioning.errors import NotProvisioned, StateError

__all__ = [
    "SIGNING_KEY_FILE",
    "TLS_KEY_FILE",
    "FileKeyStore",
    "KeyPems",
    "KeyStore",
    "device_id_for",
    "generate_pems",
    "generate_tls_pem",
    "key_id_for",
    "raw_public",
    "spki_fingerprint",
]

SIGNING_KEY_FILE = "signing_key.pem"
TLS_KEY_FILE = "tls_key.pem"


@dataclass(frozen=True, slots=True)
class KeyPems:
    """Freshly made keys as PKCS#8 PEM, for writing into a generation (repr hides them)."""

    signing_pem: bytes
    tls_pem: bytes

    def __repr__(self) -> str:
        return "KeyPems(<secret>)"


def generate_pems() -> KeyPems:
    """Make both device keys (in memory; the caller writes them 0600)."""
    return KeyPems(signing_pem=_pkcs8(ed25519.Ed25519PrivateKey.generate()), tls_pem=generate_tls_pem())


def generate_tls_pem() -> bytes:
    """A fresh P-256 TLS key as PKCS#8 PEM (renewal rotates it)."""
    return _pkcs8(ec.generate_private_key(ec.SECP256R1()))


def _pkcs8(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class KeyStore(Protocol):
    """Where the device keys live (PEM files today, a secure element later)."""

    def signing_public_raw(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature with the device signing key."""
        ...

    def tls_private_key(self) -> ec.EllipticCurvePrivateKey:
        """The TLS key object (signs the CSR; a secure element returns a handle-backed key)."""
        ...

    def tls_key_path(self) -> Path:
        """What the TLS stack loads as the client key (a PEM path or an engine/provider URI)."""
        ...


class FileKeyStore:
    """Keys as 0600 PKCS#8 PEM files in an identity directory."""

    def __init__(self, directory: Path, *, tls_key_file: str = TLS_KEY_FILE) -> None:
        self.directory = Path(directory)
        self._tls_key_file = tls_key_file

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.directory)!r})"

    def signing_key(self) -> ed25519.Ed25519PrivateKey:
        key = self._load(SIGNING_KEY_FILE)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise StateError(f"{SIGNING_KEY_FILE} is not an Ed25519 key")
        return key

    def signing_public_raw(self) -> bytes:
        return raw_public(self.signing_key().public_key())

    def sign(self, data: bytes) -> bytes:
        return self.signing_key().sign(data)

    def tls_private_key(self) -> ec.EllipticCurvePrivateKey:
        key = self._load(self._tls_key_file)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise StateError(f"{self._tls_key_file} is not a P-256 key")
        return key

    def tls_key_path(self) -> Path:
        return self.directory / self._tls_key_file

    def _load(self, name: str) -> object:
        path = self.directory / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotProvisioned(f"{path} is missing: run `idstation provision init`") from None
        except PermissionError:
            raise StateError(f"{path} is not readable by this user") from None
        try:
            return serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise StateError(f"{path} is not a PKCS#8 PEM private key") from None
