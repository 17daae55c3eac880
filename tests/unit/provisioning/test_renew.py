"""Renewal: a new key and certificate, installed only when it works; the old one stays otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from idstation.mqtt.central.enroller import Enroller
from idstation.mqtt.enrolment.session import BrokerAccess
from idstation.provisioning.bundle import apply_bundle
from idstation.provisioning.errors import BrokerError, EnrollError
from idstation.provisioning.identity import InitResult, load_identity
from idstation.provisioning.renew import apply_any, finish_renewal, renewal_due, stage_renewal

from .conftest import csr_of


@pytest.fixture
def enrolled(state_dir: Path, box: InitResult, enroller: Enroller) -> Path:
    apply_bundle(state_dir, enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    return state_dir


def test_fresh_certificate_is_not_due(enrolled: Path) -> None:
    identity = load_identity(enrolled)
    assert not renewal_due(identity, days_before=30)
    assert renewal_due(identity, days_before=400)


def test_renewal_rotates_the_tls_key_and_keeps_the_device(enrolled: Path, enroller: Enroller) -> None:
    before = load_identity(enrolled)
    bundle = enroller.renew(stage_renewal(enrolled))
    seen: list[BrokerAccess] = []
    result = finish_renewal(enrolled, bundle.to_bytes(), probe=seen.append)
    after = load_identity(enrolled)
    assert result.renewed and after.device_id == before.device_id and after.key_id == before.key_id
    assert after.tls_key_path.read_bytes() != before.tls_key_path.read_bytes()
    assert seen and seen[0].cert_file and "renew" in seen[0].cert_file  # probed with the new cert
    assert not (enrolled / "renew").exists()


def test_failed_probe_keeps_the_old_certificate(enrolled: Path, enroller: Enroller) -> None:
    before = load_identity(enrolled)
    bundle = enroller.renew(stage_renewal(enrolled))

    def broker_refuses(_access: BrokerAccess) -> None:
        raise BrokerError("broker refused the connection: not authorised")

    with pytest.raises(EnrollError, match="old one stays in use"):
        finish_renewal(enrolled, bundle.to_bytes(), probe=broker_refuses)
    after = load_identity(enrolled)
    assert after.tls_cert_path.read_bytes() == before.tls_cert_path.read_bytes()
    assert after.identity_dir == before.identity_dir
    assert (enrolled / "renew" / "tls_key.pem").exists()  # kept for the next attempt


def test_offline_renewal_bundle_is_recognised_by_apply(enrolled: Path, enroller: Enroller) -> None:
    before = load_identity(enrolled)
    bundle = enroller.renew(stage_renewal(enrolled))
    after = apply_any(enrolled, bundle.to_bytes())
    assert after.tls_key_path.read_bytes() != before.tls_key_path.read_bytes()
    assert after.tls_cert_path.read_bytes() == bundle.certificate_pem.encode()


def test_renewal_csr_with_another_signing_key_is_refused(tmp_path: Path, enrolled: Path, enroller: Enroller) -> None:
    from idstation.provisioning.errors import CsrError
    from idstation.provisioning.identity import init_device

    impostor = init_device(tmp_path / "impostor", site="hn-bd-001", counter="c01")
    with pytest.raises(EnrollError, match="not enrolled"):
        enroller.renew(csr_of(impostor))
    with pytest.raises(CsrError, match="another device"):
        enroller.renew(csr_of(impostor), device_id=load_identity(enrolled).device_id)
