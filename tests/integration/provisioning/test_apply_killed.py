"""`idstation provision apply` killed with SIGKILL between its steps: the box keeps a complete identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from idstation.provisioning.errors import NotProvisioned
from idstation.provisioning.identity import init_device, load_device, load_identity

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STEPS = ["generation_started", "files_written", "generation_renamed", "link_created", "switched"]


def _apply_until(state: Path, bundle: Path, step: str) -> None:
    env = {**os.environ, "IDSTATION_TEST_STEP_DELAY": "1"}
    argv = [sys.executable, "-m", "idstation.agent.cli", "provision", "apply", "--bundle", str(bundle)]
    proc = subprocess.Popen(
        [*argv, "--state-dir", str(state)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        for line in proc.stderr:  # bounded by the deadline and the process's end
            if f'"step": "{step}"' in line or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.parametrize("step", STEPS)
def test_cli_apply_killed_between_steps(tmp_path: Path, step: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519
    from idstation.mqtt.central.enroller import Enroller, EnrolPolicy
    from idstation.mqtt.central.fleet_ca import FleetCA
    from idstation.mqtt.central.registry import Registry

    ca = FleetCA.create(tmp_path / "ca")
    box = init_device(tmp_path / "box", site="hn-bd-001", counter="c01", fleet_ca_fingerprint=ca.fingerprint)
    central = x25519.X25519PrivateKey.generate().public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pub = central.public_bytes(serialization.Encoding.PEM, spki).decode()
    enroller = Enroller(ca, Registry(tmp_path / "reg", create=True), EnrolPolicy("mqtts://b:8883", pub))
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(
        enroller.enroll(
            (box.device.identity_dir / "device.csr").read_bytes(), site="hn-bd-001", counter="c01"
        ).to_bytes()
    )
    _apply_until(tmp_path / "box", bundle, step)
    assert load_device(tmp_path / "box").device_id == box.device.device_id
    if step == "switched":
        assert load_identity(tmp_path / "box").broker_url == "mqtts://b:8883"
    else:
        with pytest.raises(NotProvisioned):
            load_identity(tmp_path / "box")
