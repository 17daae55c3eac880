"""The names a device's keys give it (docs/provisioning.md), shared by the box and the enrolment service.

- ``key_id``    = ``"ed25519:"`` + first 16 hex chars of SHA-256(raw 32-byte Ed25519 public key)
  (``idstation.mqtt.seal.key_id_for``, so box, enrolment and registry agree)
- ``device_id`` = ``"ids-"`` + first 16 hex chars of the same hash
- TLS key fingerprint = SHA-256 hex of the P-256 key's DER SubjectPublicKeyInfo
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from idstation.mqtt import seal

__all__ = ["device_id_for", "key_id_for", "raw_public", "spki_fingerprint"]


def key_id_for(signing_public_raw: bytes) -> str:
    """The key id of an Ed25519 public key (32 raw bytes): the event layer's own ``key_id_for``."""
    return seal.key_id_for(ed25519.Ed25519PublicKey.from_public_bytes(signing_public_raw))


def device_id_for(signing_public_raw: bytes) -> str:
    """The device id derived from its Ed25519 public key."""
    return "ids-" + hashlib.sha256(signing_public_raw).hexdigest()[:16]


def raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def spki_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 hex of a public key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
