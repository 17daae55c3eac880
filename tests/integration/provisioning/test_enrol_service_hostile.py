"""``idstation central enroll --serve`` as a process on a real mosquitto, fed hostile requests.

Each request that used to kill the service (traceback, exit 1) now gets an answer with a reason on
the device's response topic, the service stays up, and a genuine box still enrols afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from idstation.mqtt.enrolment.protocol import request_topic, response_topic
from idstation.mqtt.enrolment.session import MqttSession
from idstation.provisioning.enroll import enroll_online
from idstation.provisioning.identity import init_device

from tests.fixtures.hostile_csr import DEVICE_ID, csr_on_unsupported_curve, csr_with_version
from tests.fixtures.procs import stop_process

from .conftest import PASSWORDS, Central, _wait_listening

pytestmark = pytest.mark.integration


@pytest.fixture
def served(central: Central) -> Iterator[subprocess.Popen[bytes]]:
    """The enrolment service as the operator runs it, until the test ends."""
    policy = central.enroller.policy  # the fleet settings the conftest enroller issues with
    settings = {"broker_url": central.device_url, "central_public_key_pem": policy.central_public_key_pem}
    (central.dir / "enroll.json").write_text(json.dumps(settings))
    argv = [sys.executable, "-m", "idstation.agent.cli", "central", "enroll", "--serve", "--dir", str(central.dir)]
    argv += ["--broker", central.claim_url, "--user", "enroller", "--ca", str(central.ca.directory / "ca.crt")]
    argv += ["--password", PASSWORDS["enroller"], "--duration", "240"]
    log = central.dir / "enrol-service.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        _wait_for_pong(central, proc, log)
        yield proc
    finally:
        stop_process(proc)


def _ask(central: Central, payload: bytes, *, device_id: str = DEVICE_ID, timeout: float = 20.0) -> dict | None:
    """Publish one request with the claim credential; the first answer on the response topic."""
    with MqttSession(central.access("claim")) as session:
        session.subscribe(response_topic(device_id))
        session.publish(request_topic(device_id), payload)
        message = session.receive(timeout)
    return None if message is None else json.loads(message[1])


def _wait_for_pong(central: Central, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"enrolment service exited: {log.read_text()[-2000:]}")
        answer = _ask(central, json.dumps({"kind": "ping", "request_id": uuid.uuid4().hex}).encode(), timeout=2)
        if answer is not None and answer.get("pong"):
            return
    pytest.fail("the enrolment service did not answer a ping in time")


def _enrol(csr: bytes) -> bytes:
    doc = {"version": 1, "kind": "enroll", "request_id": "h1", "token": "t" * 22, "csr_pem": csr.decode()}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"[" * 30_000, "EnrollError"),
        (_enrol(csr_with_version(95)), "CsrError"),
        (_enrol(csr_on_unsupported_curve()), "CsrError"),
    ],
    ids=["nested-json", "csr-version-95", "csr-unsupported-curve"],
)
def test_hostile_request_is_answered_and_the_service_goes_on(
    tmp_path: Path, central: Central, served: subprocess.Popen[bytes], payload: bytes, error: str
) -> None:
    answer = _ask(central, payload)
    assert answer is not None and answer["ok"] is False
    assert answer["error"] == error and answer["message"]
    assert served.poll() is None
    box = init_device(tmp_path / "box", site="hn-bd-001", counter="c01", fleet_ca_fingerprint=central.ca.fingerprint)
    central.enroller.expect(box.pairing)
    identity = enroll_online(tmp_path / "box", central.access("claim"), timeout=30)
    assert identity.device_id == box.device.device_id
    assert served.poll() is None


def test_the_service_resubscribes_after_a_broker_restart(
    tmp_path: Path, central: Central, served: subprocess.Popen[bytes]
) -> None:
    """A broker restart (clean session: subscriptions lost) must not leave the service deaf."""
    assert central.proc is not None
    central.proc.terminate()
    central.proc.wait(10)
    broker_dir = central.dir / "broker"
    with (broker_dir / "broker-2.log").open("wb") as log:
        restarted = subprocess.Popen(["mosquitto", "-c", str(broker_dir / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        _wait_listening(restarted, [central.claim_port, central.device_port], broker_dir)
        _wait_for_pong(central, served, central.dir / "enrol-service.log")  # bounded: 60 s
        pin = central.ca.fingerprint
        box = init_device(tmp_path / "box", site="hn-bd-001", counter="c01", fleet_ca_fingerprint=pin)
        central.enroller.expect(box.pairing)
        assert enroll_online(tmp_path / "box", central.access("claim"), timeout=30).device_id == box.device.device_id
    finally:
        restarted.terminate()
        restarted.wait(10)
