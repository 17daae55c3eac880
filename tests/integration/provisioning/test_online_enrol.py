"""Online enrolment against a real mosquitto: claim credential, one-time token, mTLS afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from idstation.mqtt.central.enrol_service import EnrolService
from idstation.mqtt.enrolment.session import MqttSession
from idstation.provisioning.enroll import enroll_online
from idstation.provisioning.errors import BrokerError, CsrError, TokenError
from idstation.provisioning.identity import InitResult, init_device, load_identity

from .conftest import Central

pytestmark = pytest.mark.integration


def _init(state_dir: Path, central: Central) -> InitResult:
    """A box whose technician confirmed this centre's fleet CA fingerprint."""
    return init_device(state_dir, site="hn-bd-001", counter="c01", fleet_ca_fingerprint=central.ca.fingerprint)


@pytest.fixture
def service(central: Central):
    svc = EnrolService(central.enroller, central.access("enroller"))
    svc.start()
    yield svc
    svc.stop()


def test_box_enrols_online_and_then_connects_with_its_certificate(
    tmp_path: Path, central: Central, service: EnrolService
) -> None:
    box = _init(tmp_path / "box", central)
    central.enroller.expect(box.pairing)
    identity = enroll_online(tmp_path / "box", central.access("claim"), timeout=20)
    assert identity.broker_url == central.device_url
    assert central.registry.lookup(identity.device_id) is not None
    with MqttSession(identity.broker_access()) as session:
        session.publish("idstation/v1/hn-bd-001/c01/heartbeat", b"x")  # PUBACK came back


def test_reused_token_is_refused_online(tmp_path: Path, central: Central, service: EnrolService) -> None:
    box = _init(tmp_path / "box", central)
    central.enroller.expect(box.pairing)
    enroll_online(tmp_path / "box", central.access("claim"), timeout=20)
    # a second box replaying the same token (its CSR differs: refused either way, state unchanged)
    thief = _init(tmp_path / "thief", central)
    pairing = json.loads((thief.device.identity_dir / "pairing.json").read_text())
    (thief.device.identity_dir / "pairing.json").unlink()
    (thief.device.identity_dir / "pairing.json").write_text(json.dumps({**pairing, "token": box.pairing.token}))
    with pytest.raises(TokenError, match="already used"):
        enroll_online(tmp_path / "thief", central.access("claim"), timeout=20)
    assert load_identity(tmp_path / "box").device_id == box.device.device_id


def test_wrong_token_is_refused_online(tmp_path: Path, central: Central, service: EnrolService) -> None:
    _init(tmp_path / "box", central)
    with pytest.raises(TokenError, match="unknown"):
        enroll_online(tmp_path / "box", central.access("claim"), timeout=20)


def test_csr_for_another_device_under_a_valid_token_is_refused(
    tmp_path: Path, central: Central, service: EnrolService
) -> None:
    box = _init(tmp_path / "box", central)
    other = _init(tmp_path / "other", central)
    central.enroller.expect(box.pairing)
    request = {
        "version": 1,
        "kind": "enroll",
        "request_id": "r1",
        "token": box.pairing.token,
        "csr_pem": (other.device.identity_dir / "device.csr").read_text(),
    }
    reply = service.handle(f"idstation/v1/provision/{box.device.device_id}/request", json.dumps(request).encode())
    assert reply is not None and b'"CsrError"' in reply[1]
    with pytest.raises(CsrError):
        central.enroller.enroll((other.device.identity_dir / "device.csr").read_bytes(), token=box.pairing.token)


def test_wrong_claim_password_is_a_broker_error(tmp_path: Path, central: Central) -> None:
    _init(tmp_path / "box", central)
    with pytest.raises(BrokerError, match="refused"):
        enroll_online(tmp_path / "box", central.access("claim", password="wrong"), timeout=5)


def test_claim_credential_cannot_publish_events(central: Central) -> None:
    with MqttSession(central.access("central")) as listener:
        listener.subscribe("idstation/v1/#")
        with MqttSession(central.access("claim")) as claim:
            claim.publish("idstation/v1/hn-bd-001/c01/identity", b"forged")
            claim.publish("idstation/v1/provision/ids-0000000000000000/response", b"forged")
        assert listener.receive(1.0) is None


def test_online_renewal_over_mtls_switches_to_a_working_certificate(
    tmp_path: Path, central: Central, service: EnrolService
) -> None:
    from idstation.provisioning.renew import renew_online

    box = _init(tmp_path / "box", central)
    central.enroller.expect(box.pairing)
    before = enroll_online(tmp_path / "box", central.access("claim"), timeout=20)
    not_due = renew_online(tmp_path / "box", timeout=20)
    assert not not_due.renewed and not_due.reason == "not_due"
    result = renew_online(tmp_path / "box", timeout=20, force=True)
    after = load_identity(tmp_path / "box")
    assert result.renewed and after.tls_cert_path.read_bytes() != before.tls_cert_path.read_bytes()
    with MqttSession(after.broker_access()) as session:
        session.publish("idstation/v1/hn-bd-001/c01/heartbeat", b"x")


def test_online_answer_from_an_unconfirmed_fleet_ca_is_not_installed(
    tmp_path: Path, central: Central, service: EnrolService
) -> None:
    """The enrolment response is a bundle: it must come from the CA the technician confirmed at init."""
    from idstation.mqtt.central.fleet_ca import FleetCA
    from idstation.provisioning.errors import BundleError, NotProvisioned

    expected = FleetCA.create(tmp_path / "the-real-fleet-ca").fingerprint  # this broker's CA is not it
    box = init_device(tmp_path / "box", site="hn-bd-001", counter="c01", fleet_ca_fingerprint=expected)
    central.enroller.expect(box.pairing)
    with pytest.raises(BundleError, match="other than the confirmed one"):
        enroll_online(tmp_path / "box", central.access("claim"), timeout=20)
    with pytest.raises(NotProvisioned):
        load_identity(tmp_path / "box")


def test_receipt_keys_arrive_online_and_rotate_through_online_renewal(tmp_path: Path, central: Central) -> None:
    """The online enrolment answer carries the centre's receipt keys; a staged key rolls in at renewal."""
    from dataclasses import replace

    from idstation.mqtt.central import receipt_keys
    from idstation.mqtt.central.enroller import Enroller
    from idstation.mqtt.seal import key_id_for
    from idstation.provisioning.identity import load_receipt_keys
    from idstation.provisioning.renew import renew_online

    first = receipt_keys.create(central.dir)
    policy = replace(central.enroller.policy, receipt_keys_dir=central.dir)
    svc = EnrolService(Enroller(central.ca, central.registry, policy), central.access("enroller"))
    svc.start()
    try:
        box = _init(tmp_path / "box", central)
        central.enroller.expect(box.pairing)
        enroll_online(tmp_path / "box", central.access("claim"), timeout=20)
        assert [key_id_for(k) for k in load_receipt_keys(tmp_path / "box")] == [first]
        staged = receipt_keys.add(central.dir)
        assert renew_online(tmp_path / "box", timeout=20, force=True).renewed
        assert [key_id_for(k) for k in load_receipt_keys(tmp_path / "box")] == [first, staged]
    finally:
        svc.stop()
