from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds.sod import parse_sod
from idstation.agent.emrtd.passive_auth import verify_passive
from idstation.agent.emrtd.trust import OID_CSCA_MASTER_LIST, CscaMasterList, TrustStore
from idstation.agent.emrtd.virtual_card.image import FID_DG, FID_SOD
from idstation.agent.errors import ConfigError
from idstation.agent.sim.profile_data.pki import TestPki, default_pki
from idstation.agent.sim.profiles import build_chip_image, builtin_profiles

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _groups(image) -> dict[int, bytes]:  # type: ignore[no-untyped-def]
    return {n: image.files[fid] for n, fid in FID_DG.items() if fid in image.files}


@pytest.fixture(scope="module")
def trust() -> TrustStore:
    return TrustStore([default_pki().csca_certificate])


@pytest.fixture(scope="module")
def image():  # type: ignore[no-untyped-def]
    return build_chip_image(builtin_profiles()["an"])


def test_genuine_chip_passes(image, trust: TrustStore) -> None:  # type: ignore[no-untyped-def]
    verdict = verify_passive(image.files[FID_SOD], _groups(image), trust, NOW)
    out = verdict.to_json()
    assert out["result"] == "ok"
    assert out["data_groups"] == {"DG1": "ok", "DG2": "ok", "DG13": "ok", "DG14": "ok", "DG15": "ok"}
    assert out["csca"]["subject"] == "CN=idstation TEST CSCA,O=idstation test,C=VN"
    assert out["signer"]["serial"]


def test_data_groups_not_read_are_reported_not_failed(image, trust: TrustStore) -> None:  # type: ignore[no-untyped-def]
    groups = {13: image.files[FID_DG[13]]}
    verdict = verify_passive(image.files[FID_SOD], groups, trust, NOW)
    assert verdict.result == "ok"
    assert verdict.data_groups[1] == "not_read"


def test_tampered_dg13_fails_with_the_dg_named(trust: TrustStore) -> None:
    tampered = build_chip_image(builtin_profiles()["an"], tamper_dg=13)
    verdict = verify_passive(tampered.files[FID_SOD], _groups(tampered), trust, NOW)
    assert verdict.result == "failed"
    assert verdict.data_groups[13] == "mismatch"
    assert "DG13" in (verdict.reason or "")


def test_bad_signature_fails(image, trust: TrustStore) -> None:  # type: ignore[no-untyped-def]
    sod = bytearray(image.files[FID_SOD])
    signature = parse_sod(bytes(sod)).signature
    at = bytes(sod).rindex(signature)
    sod[at + len(signature) // 2] ^= 0x01
    verdict = verify_passive(bytes(sod), _groups(image), trust, NOW)
    assert (verdict.result, verdict.reason) == ("failed", "EF.SOD signature does not verify")


def test_unknown_csca(image) -> None:  # type: ignore[no-untyped-def]
    other = TrustStore([TestPki.create(seed=7).csca_certificate])
    verdict = verify_passive(image.files[FID_SOD], _groups(image), other, NOW)
    assert verdict.result == "unknown_csca"
    assert verdict.to_json()["csca"] is None


def test_no_trust_store_is_unknown_csca(image) -> None:  # type: ignore[no-untyped-def]
    assert verify_passive(image.files[FID_SOD], _groups(image), None, NOW).result == "unknown_csca"


def test_chip_signed_by_unknown_csca(trust: TrustStore) -> None:
    foreign = build_chip_image(builtin_profiles()["an"], TestPki.unknown())
    assert verify_passive(foreign.files[FID_SOD], _groups(foreign), trust, NOW).result == "unknown_csca"


def test_expired_signer(trust: TrustStore) -> None:
    expired = build_chip_image(builtin_profiles()["an"], expired_signer=True)
    verdict = verify_passive(expired.files[FID_SOD], _groups(expired), trust, NOW)
    assert verdict.result == "signer_expired"


def test_no_sod_is_not_checked(trust: TrustStore) -> None:
    assert verify_passive(None, {}, trust, NOW).result == "not_checked"
    assert verify_passive(b"", {}, trust, NOW).result == "not_checked"


def test_garbage_sod_is_a_failed_verdict(trust: TrustStore) -> None:
    assert verify_passive(b"\x77\x03\x30\x01\x00", {}, trust, NOW).to_json()["result"] == "failed"


def test_trust_store_loads_pem_der_and_master_list_and_skips_junk(tmp_path: Path) -> None:
    pki, other, third = default_pki(), TestPki.create(seed=3), TestPki.create(seed=4)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "csca.pem").write_bytes(pki.csca_pem())
    (tmp_path / "other.cer").write_bytes(other.csca_certificate.public_bytes(serialization.Encoding.DER))
    ml = CscaMasterList({"version": 0, "cert_list": [asn1_x509.Certificate.load(
        third.csca_certificate.public_bytes(serialization.Encoding.DER))]})  # fmt: skip
    signed = cms.SignedData({
        "version": "v3", "digest_algorithms": [],
        "encap_content_info": {"content_type": OID_CSCA_MASTER_LIST, "content": core.ParsableOctetString(ml.dump())},
        "signer_infos": [],
    })  # fmt: skip
    (tmp_path / "list.ml").write_bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())
    (tmp_path / "broken.der").write_bytes(b"\x30\x03\x02\x01")
    (tmp_path / "key.pem").write_bytes(
        pki.dsc_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "notes.txt").write_text("hello")
    store = TrustStore.from_dir(tmp_path)
    assert len(store) == 3
    assert store.issuers_of(pki.dsc_certificate) == [pki.csca_certificate]


def test_trust_store_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        TrustStore.from_dir(tmp_path / "nope")


def test_sod_wrapper_must_be_tag_77(image) -> None:  # type: ignore[no-untyped-def]
    inner = tlv.decode(image.files[FID_SOD]).value
    assert verify_passive(tlv.encode(0x78, inner), _groups(image), None, NOW).result == "failed"


@pytest.fixture(scope="module")
def rsa_dsc() -> tuple[object, object]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _dsc_signed_by_test_csca(datetime(2021, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC), key)


@pytest.mark.parametrize("scheme", ["rsassa_pkcs1v15", "rsassa_pss"])
def test_rsa_signed_sod_verifies(rsa_dsc, trust: TrustStore, image, scheme: str) -> None:  # type: ignore[no-untyped-def]
    from idstation.agent.emrtd.lds.build import encode_sod

    cert, key = rsa_dsc
    groups = _groups(image)
    sod = encode_sod(groups, cert, key, rsa_scheme=scheme)
    assert parse_sod(sod).signature_algorithm == scheme
    assert verify_passive(sod, groups, trust, NOW).result == "ok"
    groups[13] = groups[13][:-1] + bytes([groups[13][-1] ^ 1])
    assert verify_passive(sod, groups, trust, NOW).result == "failed"


def test_impostor_csca_with_the_same_name_fails(image) -> None:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    real = default_pki().csca_certificate
    key = ec.generate_private_key(ec.SECP256R1())
    impostor = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.subject)
        .public_key(key.public_key())
        .serial_number(77)
        .not_valid_before(real.not_valid_before_utc)
        .not_valid_after(real.not_valid_after_utc)
        .sign(key, hashes.SHA256())
    )
    verdict = verify_passive(image.files[FID_SOD], _groups(image), TrustStore([impostor]), NOW)
    assert verdict.result == "failed"
    assert verdict.reason == "document signer certificate signature does not verify"


def test_test_csca_is_the_same_key_in_every_process() -> None:
    first, second = TestPki.create(), TestPki.create()
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert first.csca_certificate.public_key().public_bytes(der, spki) == second.csca_key.public_key().public_bytes(
        der, spki
    )
    assert first.csca_certificate.subject == second.csca_certificate.subject


def _dsc_signed_by_test_csca(not_before: datetime, not_after: datetime, key=None):  # type: ignore[no-untyped-def]
    """A DSC (with its private key) that the test CSCA's key signs, valid from ``not_before``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    pki = default_pki()
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(pki.dsc_certificate.subject)
        .issuer_name(pki.csca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(4343)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(pki.csca_key, hashes.SHA256())
    )
    return cert, key


def test_a_signer_dated_before_its_csca_existed_fails(image, trust: TrustStore) -> None:  # type: ignore[no-untyped-def]
    """The CSCA's key verifies the DSC, but the DSC claims an issue date outside the CSCA's validity."""
    from idstation.agent.emrtd.lds.build import encode_sod

    cert, key = _dsc_signed_by_test_csca(datetime(2015, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
    groups = _groups(image)
    verdict = verify_passive(encode_sod(groups, cert, key), groups, trust, NOW)
    assert verdict.result == "failed"
    assert verdict.reason == "document signer was issued outside its CSCA's signing period"


def test_the_csca_private_key_usage_period_bounds_the_signer(image) -> None:  # type: ignore[no-untyped-def]
    """A CSCA certificate outlives its key's signing period (9303-12): a DSC issued after it fails;
    the same key re-certified with a later period (a renewed CSCA) makes it pass."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from idstation.agent.emrtd.lds.build import encode_sod

    pki = default_pki()
    real = pki.csca_certificate

    def csca(serial: int, usage_end: datetime) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(real.subject)
            .issuer_name(real.subject)
            .public_key(real.public_key())
            .serial_number(serial)
            .not_valid_before(real.not_valid_before_utc)
            .not_valid_after(real.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.PrivateKeyUsagePeriod(real.not_valid_before_utc, usage_end), critical=False)
            .sign(pki.csca_key, hashes.SHA256())
        )

    cert, key = _dsc_signed_by_test_csca(datetime(2025, 6, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
    groups = _groups(image)
    sod = encode_sod(groups, cert, key)
    old = csca(501, datetime(2024, 12, 31, tzinfo=UTC))
    assert verify_passive(sod, groups, TrustStore([old]), NOW).result == "failed"
    renewed = csca(502, datetime(2029, 12, 31, tzinfo=UTC))
    verdict = verify_passive(sod, groups, TrustStore([old, renewed]), NOW)
    assert verdict.result == "ok"
    assert verdict.to_json()["csca"]["serial"] == format(502, "x")
