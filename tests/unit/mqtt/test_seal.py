"""Frames: the signature covers every byte sent, the seal binds device and event, garbage is a SealError."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.mqtt.errors import SealError
from idstation.mqtt.seal import (
    Signer,
    decode_frame,
    encode_frame,
    key_id_for,
    load_central_private_key,
    load_signing_key,
    open_private,
    seal_private,
    verify_frame,
)

from .conftest import CITIZEN


def _frame() -> tuple[bytes, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    return encode_frame({"kind": "heartbeat", "n": 1}, b"sealed-bytes", Signer(key)), key


def test_a_frame_round_trips_and_verifies() -> None:
    data, key = _frame()
    frame = decode_frame(data)
    verify_frame(frame, key.public_key())
    assert frame.header == {"kind": "heartbeat", "n": 1}
    assert frame.sealed == b"sealed-bytes"
    assert frame.key_id == key_id_for(key.public_key())


def test_flipping_any_byte_breaks_the_frame() -> None:
    data, key = _frame()
    for index in range(0, len(data), 7):
        forged = bytearray(data)
        forged[index] ^= 0x01
        with pytest.raises(SealError):
            verify_frame(decode_frame(bytes(forged)), key.public_key())


def test_another_key_does_not_verify() -> None:
    data, _ = _frame()
    with pytest.raises(SealError, match="bad signature"):
        verify_frame(decode_frame(data), Ed25519PrivateKey.generate().public_key())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_a_seal_error_never_a_crash(data: bytes) -> None:
    with contextlib.suppress(SealError):
        decode_frame(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_prefixed_garbage_is_a_seal_error(tail: bytes) -> None:
    with contextlib.suppress(SealError):
        decode_frame(b"IDS1" + tail)


def test_the_seal_opens_only_for_the_same_device_and_event() -> None:
    central = X25519PrivateKey.generate()
    sealed = seal_private({"citizen": CITIZEN}, central.public_key(), "box-1", "ev-1")
    assert open_private(sealed, central, "box-1", "ev-1") == {"citizen": CITIZEN}
    for device, event in (("box-2", "ev-1"), ("box-1", "ev-2")):
        with pytest.raises(SealError):
            open_private(sealed, central, device, event)
    with pytest.raises(SealError):
        open_private(sealed, X25519PrivateKey.generate(), "box-1", "ev-1")


def test_the_ciphertext_does_not_contain_the_plaintext() -> None:
    central = X25519PrivateKey.generate()
    sealed = seal_private({"citizen": CITIZEN}, central.public_key(), "box-1", "ev-1")
    for value in CITIZEN.values():
        assert value.encode() not in sealed


def test_the_central_key_loads_from_openssl_style_pkcs8_pem(tmp_path) -> None:
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = tmp_path / "central.pem"
    path.write_bytes(pem)
    assert load_central_private_key(path).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


def test_wrong_key_types_and_missing_files_are_seal_errors(tmp_path) -> None:
    ed = Ed25519PrivateKey.generate()
    pem = ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(SealError, match="not an X25519"):
        load_central_private_key(pem)
    with pytest.raises(SealError, match="cannot read"):
        load_signing_key(tmp_path / "missing.pem")
    with pytest.raises(SealError):
        load_signing_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
