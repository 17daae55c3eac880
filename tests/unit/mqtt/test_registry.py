"""The device registry: enrolment, revocation seen by a running reader, bad input refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.errors import RegistryError
from idstation.mqtt.seal import key_id_for


def test_an_enrolled_device_is_found_by_id_and_by_key_id(tmp_path) -> None:
    reg = Registry(tmp_path, create=True)
    key = Ed25519PrivateKey.generate()
    rec = reg.add_device("box-1", "hn-01", "c01", key.public_key())
    assert rec.key_id == key_id_for(key.public_key())
    assert reg.lookup("box-1") == rec
    assert reg.by_key_id(rec.key_id).device_id == "box-1"


def test_a_running_reader_sees_enrolments_and_revocations(tmp_path) -> None:
    writer, reader = Registry(tmp_path, create=True), Registry(tmp_path)
    assert reader.lookup("box-1") is None
    rec = writer.add_device("box-1", "hn-01", "c01", Ed25519PrivateKey.generate().public_key())
    assert reader.lookup("box-1") is not None
    writer.revoke("box-1", reason="stolen")
    assert reader.lookup("box-1") is None
    assert reader.by_key_id(rec.key_id) is None
    assert reader.by_key_id(rec.key_id, include_revoked=True) is not None
    assert reader.is_revoked("box-1")


def test_a_missing_registry_trusts_nothing(tmp_path) -> None:
    reg = Registry(tmp_path / "nowhere")
    assert reg.devices() == []
    assert reg.lookup("box-1") is None


def test_pem_text_is_accepted_and_a_wrong_key_id_refused(tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    reg = Registry(tmp_path, create=True)
    assert reg.add_device("box-1", "s", "c", pem).public_key_pem == pem
    with pytest.raises(RegistryError, match="key id"):
        reg.add_device("box-2", "s", "c", pem, key_id="ed25519:0000000000000000")


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "x" * 200, "with space", "+", "#"])
def test_names_that_are_not_file_or_topic_safe_are_refused(tmp_path, bad: str) -> None:
    reg = Registry(tmp_path, create=True)
    with pytest.raises(RegistryError):
        reg.add_device(bad, "s", "c", Ed25519PrivateKey.generate().public_key())


def test_a_corrupt_record_is_skipped_not_fatal(tmp_path) -> None:
    reg = Registry(tmp_path, create=True)
    reg.add_device("box-1", "s", "c", Ed25519PrivateKey.generate().public_key())
    (tmp_path / "devices" / "box-2.json").write_text("{not json", encoding="utf-8")
    reader = Registry(tmp_path)
    assert [r.device_id for r in reader.devices()] == ["box-1"]


def test_a_record_names_no_key_material_in_its_repr(tmp_path) -> None:
    rec = Registry(tmp_path, create=True).add_device("box-1", "s", "c", Ed25519PrivateKey.generate().public_key())
    assert "BEGIN" not in repr(rec)


def test_a_record_may_carry_its_key_as_an_ed25519_certificate(tmp_path) -> None:
    import datetime as dt
    import json

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box-7")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, None)
    )  # fmt: skip
    (tmp_path / "devices").mkdir()
    record = {"device_id": "box-7", "site": "s", "counter": "c", "certificate_pem": cert.public_bytes(
        serialization.Encoding.PEM).decode()}  # fmt: skip
    (tmp_path / "devices" / "box-7.json").write_text(json.dumps(record), encoding="utf-8")
    found = Registry(tmp_path).lookup("box-7")
    assert found is not None and found.key_id == key_id_for(key.public_key())
