"""Revocation reaches the broker too: after a reload with the new CRL a revoked box cannot connect."""

from __future__ import annotations

from pathlib import Path

import pytest
from idstation.mqtt.enrolment.session import BrokerAccess, MqttSession
from idstation.provisioning.bundle import apply_bundle
from idstation.provisioning.errors import BrokerError
from idstation.provisioning.identity import init_device

from .conftest import Central

pytestmark = pytest.mark.integration


def test_revoked_box_is_refused_by_the_broker_after_reload(tmp_path: Path, central: Central) -> None:
    box = init_device(tmp_path / "box", site="hn-bd-001", counter="c01", fleet_ca_fingerprint=central.ca.fingerprint)
    csr = (box.device.identity_dir / "device.csr").read_bytes()
    identity = apply_bundle(tmp_path / "box", central.enroller.enroll(csr, site="hn-bd-001", counter="c01").to_bytes())
    files = (str(identity.fleet_ca_path), str(identity.tls_cert_path), str(identity.tls_key_path))
    access = BrokerAccess(identity.broker_url, None, None, *files)
    with MqttSession(access):
        pass
    central.enroller.revoke(identity.device_id, reason="stolen")
    central.reload()
    for _ in range(20):  # bounded: the broker applies SIGHUP within moments
        try:
            with MqttSession(access, timeout=3):
                pass
        except BrokerError:
            return
    pytest.fail("the broker still accepts the revoked certificate")
