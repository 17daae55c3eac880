"""A power cut during apply (the process killed between steps) leaves the old or the new identity."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from idstation.mqtt.central.enroller import Enroller
from idstation.provisioning.bundle import apply_bundle
from idstation.provisioning.errors import NotProvisioned
from idstation.provisioning.identity import InitResult, load_device, load_identity

from .conftest import csr_of

STEPS = ["generation_started", "files_written", "generation_renamed", "link_created", "switched"]

CHILD = """
import os, signal, sys
from pathlib import Path
from idstation.provisioning.bundle import apply_bundle
state, bundle, kill_at = sys.argv[1], Path(sys.argv[2]).read_bytes(), sys.argv[3]
def step(name):
    if name == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
apply_bundle(state, bundle, on_step=step)
"""


def _apply_and_die(state_dir: Path, bundle_file: Path, step: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(state_dir), str(bundle_file), step],
        check=False,
        capture_output=True,
        timeout=60,
    )
    return proc.returncode


@pytest.mark.parametrize("step", STEPS)
def test_first_apply_killed_at_each_step(
    tmp_path: Path, state_dir: Path, box: InitResult, enroller: Enroller, step: str
) -> None:
    bundle_file = tmp_path / "bundle.json"
    bundle_file.write_bytes(enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    assert _apply_and_die(state_dir, bundle_file, step) == -signal.SIGKILL
    device = load_device(state_dir)  # the box always has a complete identity
    assert device.device_id == box.device.device_id
    if step == "switched":
        assert load_identity(state_dir).device_id == box.device.device_id
    else:
        with pytest.raises(NotProvisioned):
            load_identity(state_dir)
        assert (device.identity_dir / "pairing.json").exists()  # old generation, untouched
    # and a second attempt completes, cleaning what the cut left behind
    identity = apply_bundle(state_dir, bundle_file.read_bytes())
    assert identity.device_id == box.device.device_id
    assert not list((state_dir / "identity.d").glob("*.tmp"))


@pytest.mark.parametrize("step", ["files_written", "link_created"])
def test_reapply_killed_keeps_the_old_binding(
    tmp_path: Path, state_dir: Path, box: InitResult, enroller: Enroller, step: str
) -> None:
    apply_bundle(state_dir, enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    enroller.policy = type(enroller.policy)("mqtts://new-broker.example:8883", enroller.policy.central_public_key_pem)
    bundle_file = tmp_path / "bundle2.json"
    bundle_file.write_bytes(enroller.renew(csr_of(box)).to_bytes())
    assert _apply_and_die(state_dir, bundle_file, step) == -signal.SIGKILL
    identity = load_identity(state_dir)
    assert identity.broker_url == "mqtts://broker.example:8883"
    binding = json.loads((identity.identity_dir / "binding.json").read_text())
    assert binding["device_id"] == box.device.device_id
