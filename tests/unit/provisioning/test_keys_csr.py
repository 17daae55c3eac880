"""Device keys and CSR: made on the device, private files 0600, the CSR proves both keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from idstation.mqtt.enrolment.csr import build_csr, verify_csr
from idstation.mqtt.seal import key_id_for as mqtt_key_id_for
from idstation.provisioning import keys
from idstation.provisioning.errors import CsrError
from idstation.provisioning.identity import InitResult, load_device

from .conftest import csr_of


def test_private_keys_are_mode_0600(box: InitResult) -> None:
    for name in ("signing_key.pem", "tls_key.pem", "pairing.json"):
        mode = stat.S_IMODE((box.device.identity_dir / name).stat().st_mode)
        assert mode == 0o600, name


def test_device_id_and_key_id_derive_from_the_signing_key(box: InitResult) -> None:
    public = box.device.store.signing_key().public_key()
    raw = keys.raw_public(public)
    assert box.device.device_id == keys.device_id_for(raw)
    assert box.device.device_id.startswith("ids-") and len(box.device.device_id) == 20
    assert box.device.key_id == mqtt_key_id_for(public)  # the registry agrees


def test_csr_verifies_and_names_the_device(box: InitResult) -> None:
    info = verify_csr(csr_of(box))
    assert info.device_id == box.device.device_id
    assert info.key_id == box.device.key_id
    assert info.tls_fingerprint == box.device.tls_fingerprint


def test_csr_with_foreign_signing_key_proof_is_refused(box: InitResult, tmp_path: Path) -> None:
    class Mixed(keys.FileKeyStore):
        """Claims the box's signing key but cannot sign with it."""

        def sign(self, data: bytes) -> bytes:
            return ed25519.Ed25519PrivateKey.generate().sign(data)

    forged = build_csr(Mixed(box.device.identity_dir))
    with pytest.raises(CsrError, match="proof"):
        verify_csr(forged)


def test_garbage_is_not_a_csr() -> None:
    with pytest.raises(CsrError):
        verify_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    with pytest.raises(CsrError):
        verify_csr(b"\x30\x03\x02\x01\x00")


def test_init_is_idempotent_for_the_same_binding(state_dir: Path, box: InitResult) -> None:
    from idstation.provisioning.identity import init_device

    again = init_device(state_dir, site="hn-bd-001", counter="c01")
    assert not again.created
    assert again.pairing.token == box.pairing.token
    assert load_device(state_dir).device_id == box.device.device_id


def test_init_for_another_counter_keeps_keys_and_issues_a_new_token(state_dir: Path, box: InitResult) -> None:
    from idstation.provisioning.identity import init_device

    moved = init_device(state_dir, site="hn-bd-001", counter="c02")
    assert moved.device.device_id == box.device.device_id
    assert moved.pairing.token != box.pairing.token
    assert moved.device.counter == "c02"
