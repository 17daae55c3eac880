"""Enrolment on the central side and applying its bundle on the box, with the faults the issue names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from idstation.mqtt.central.enroller import Enroller
from idstation.mqtt.central.fleet_ca import FleetCA
from idstation.mqtt.central.registry import Registry
from idstation.provisioning.bundle import apply_bundle, parse_bundle
from idstation.provisioning.errors import BundleError, CsrError, EnrollError, NotProvisioned, TokenError
from idstation.provisioning.identity import InitResult, init_device, load_identity

from .conftest import csr_of


def test_not_provisioned_before_apply(state_dir: Path, box: InitResult) -> None:
    with pytest.raises(NotProvisioned):
        load_identity(state_dir)
    with pytest.raises(NotProvisioned):
        load_identity(state_dir.parent / "empty")


def test_enrol_with_token_then_apply_gives_a_full_identity(
    state_dir: Path, box: InitResult, enroller: Enroller, registry: Registry
) -> None:
    enroller.expect(box.pairing)
    bundle = enroller.enroll(csr_of(box), token=box.pairing.token)
    identity = apply_bundle(state_dir, bundle.to_bytes())
    assert identity.device_id == box.device.device_id
    assert (identity.site, identity.counter) == ("hn-bd-001", "c01")
    assert identity.broker_url == "mqtts://broker.example:8883"
    assert load_identity(state_dir).key_id == identity.key_id
    record = registry.lookup(identity.device_id)
    assert record is not None and record.key_id == identity.key_id
    assert not (identity.identity_dir / "pairing.json").exists()  # the token is spent


def test_reused_token_is_refused(box: InitResult, enroller: Enroller) -> None:
    enroller.expect(box.pairing)
    enroller.enroll(csr_of(box), token=box.pairing.token)
    with pytest.raises(TokenError, match="already used"):
        enroller.enroll(csr_of(box), token=box.pairing.token)


def test_wrong_token_is_refused(box: InitResult, enroller: Enroller) -> None:
    enroller.expect(box.pairing)
    with pytest.raises(TokenError, match="unknown"):
        enroller.enroll(csr_of(box), token="not-the-token-at-all")


def test_token_is_bound_to_its_counter(box: InitResult, enroller: Enroller) -> None:
    enroller.expect(box.pairing)
    with pytest.raises(TokenError, match="site or counter"):
        enroller.enroll(csr_of(box), token=box.pairing.token, counter="c99")


def test_csr_for_another_device_is_refused(tmp_path: Path, box: InitResult, enroller: Enroller) -> None:
    other = init_device(tmp_path / "other-box", site="hn-bd-001", counter="c01")
    enroller.expect(box.pairing)
    with pytest.raises(CsrError, match="another device"):
        enroller.enroll(csr_of(other), token=box.pairing.token)
    with pytest.raises(CsrError, match="another device"):
        enroller.enroll(csr_of(other), token=box.pairing.token, device_id=box.device.device_id)


def test_bundle_for_another_device_is_refused_and_box_unchanged(
    tmp_path: Path, state_dir: Path, box: InitResult, enroller: Enroller
) -> None:
    other = init_device(tmp_path / "other-box", site="hn-bd-001", counter="c02")
    bundle = enroller.enroll(csr_of(other), site="hn-bd-001", counter="c02")
    before = sorted(p.name for p in (state_dir / "identity").iterdir())
    with pytest.raises(BundleError, match="another device"):
        apply_bundle(state_dir, bundle.to_bytes())
    assert sorted(p.name for p in (state_dir / "identity").iterdir()) == before


def test_tampered_bundle_is_refused(state_dir: Path, box: InitResult, enroller: Enroller) -> None:
    bundle = enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01")
    doc = json.loads(bundle.to_bytes())
    doc["broker_url"] = "mqtts://evil.example:8883"
    with pytest.raises(BundleError, match="signature"):
        apply_bundle(state_dir, json.dumps(doc).encode())


def test_bundle_from_another_fleet_ca_is_refused_once_a_ca_is_installed(
    tmp_path: Path, state_dir: Path, box: InitResult, enroller: Enroller, central_key
) -> None:
    apply_bundle(state_dir, enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    rogue = Enroller(FleetCA.create(tmp_path / "rogue"), Registry(tmp_path / "rogue-reg", create=True), enroller.policy)
    with pytest.raises(BundleError, match="another fleet CA"):
        apply_bundle(state_dir, rogue.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())


@pytest.mark.parametrize("garbage", [b"", b"{}", b"[1]", b"\xff\xfe", b'{"format": "idstation-bundle/1"}'])
def test_garbage_bundle_gives_bundle_error(state_dir: Path, box: InitResult, garbage: bytes) -> None:
    with pytest.raises(BundleError):
        parse_bundle(garbage)
    with pytest.raises(BundleError):
        apply_bundle(state_dir, garbage)


def test_revoked_device_cannot_enrol_or_renew(state_dir: Path, box: InitResult, enroller: Enroller) -> None:
    apply_bundle(state_dir, enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    assert enroller.revoke(box.device.device_id, reason="stolen") == 1
    assert enroller.registry.lookup(box.device.device_id) is None
    with pytest.raises(EnrollError, match="revoked"):
        enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01")
    with pytest.raises(EnrollError):
        enroller.renew(csr_of(box))


def test_revocation_lands_in_the_crl(box: InitResult, enroller: Enroller, fleet_ca: FleetCA) -> None:
    from cryptography import x509

    bundle = enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01")
    enroller.revoke(box.device.device_id)
    crl = x509.load_pem_x509_crl((fleet_ca.directory / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(bundle.certificate().serial_number) is not None
