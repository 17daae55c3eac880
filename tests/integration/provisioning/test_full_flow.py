"""The whole flow through the CLI against a real mosquitto: init, online enrolment, selftest on simulated
hardware, a first event accepted by the central side, renewal, revocation (events rejected)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from idstation.agent.cli import main
from idstation.mqtt.central.dedupe import DedupeStore
from idstation.mqtt.central.listener import CentralProcessor
from idstation.mqtt.enrolment.session import MqttSession
from idstation.mqtt.errors import EventRejected

from .conftest import PASSWORDS, Central

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


def _serve_in_background(central: Central, requests: int) -> threading.Thread:
    argv = ["central", "enroll", "--dir", str(central.dir), "--serve", "--broker", central.claim_url]
    argv += ["--user", "enroller", "--password", PASSWORDS["enroller"], "--ca", str(central.ca.directory / "ca.crt")]
    argv += ["--max-requests", str(requests), "--duration", "60"]
    thread = threading.Thread(target=main, args=(argv,), daemon=True)
    thread.start()
    ping = json.dumps({"version": 1, "kind": "ping", "request_id": "ping"}).encode()
    with MqttSession(central.access("claim")) as probe:
        probe.subscribe("idstation/v1/provision/ids-0000000000000000/response")
        for _ in range(30):  # bounded: the service answers within a second once subscribed
            probe.publish("idstation/v1/provision/ids-0000000000000000/request", ping)
            if probe.receive(0.5) is not None:
                return thread
    pytest.fail("enrol service did not answer a ping")


def _next_event(listener: MqttSession, processor: CentralProcessor):
    for _ in range(20):  # bounded; provisioning traffic on idstation/v1/provision/... is not an event
        message = listener.receive(10.0)
        assert message is not None, "no event reached the central side"
        if not message[0].startswith("idstation/v1/provision/"):
            return processor.process(*message)
    pytest.fail("only provisioning traffic arrived")


def test_whole_flow(tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]) -> None:
    box = str(tmp_path / "box")
    pub = central.central_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = {"broker_url": central.device_url, "central_public_key_pem": pub.decode()}
    (central.dir / "enroll.json").write_text(json.dumps(settings))
    processor = CentralProcessor(central.registry, central.central_key, DedupeStore(tmp_path / "dedupe.sqlite"))

    code, init = _run(
        capsys,
        *("provision", "init", "--site", "hn-bd-001", "--counter", "c01", "--state-dir", box, "--json"),
        *("--fleet-ca-fingerprint", central.ca.fingerprint),
    )
    assert code == 0 and init["device_id"].startswith("ids-")
    code, _expected = _run(
        capsys, "central", "enroll", "--dir", str(central.dir), "--pairing-code", init["pairing_code"]
    )
    assert code == 0

    server = _serve_in_background(central, requests=2)
    code, enrolled = _run(
        capsys,
        *("provision", "enroll", "--broker", central.claim_url, "--claim-user", "claim"),
        *("--claim-password", PASSWORDS["claim"], "--ca", str(central.ca.directory / "ca.crt")),
        *("--state-dir", box, "--timeout", "20", "--json"),
    )
    assert code == 0 and enrolled["device_id"] == init["device_id"]
    assert enrolled["broker_url"] == central.device_url
    central.reload()  # the enrolment rewrote device.acl; the systemd path unit reloads mosquitto in production
    time.sleep(0.5)

    with MqttSession(central.access("central")) as listener:
        listener.subscribe("idstation/v1/+/+/+")
        code, report = _run(capsys, "selftest", "--state-dir", box, "--reader", "sim", "--camera", "sim", "--json")
        assert code == 0, report
        assert report["ok"] and {c["name"] for c in report["checks"]} >= {"reader", "camera", "broker", "clock"}
        accepted = _next_event(listener, processor)  # the selftest heartbeat: signed, enrolled, accepted
        assert accepted.header["device_id"] == init["device_id"] and accepted.kind == "heartbeat"

        code, renewed = _run(capsys, "provision", "renew", "--state-dir", box, "--force", "--timeout", "20", "--json")
        assert code == 0 and renewed["renewed"] is True
        code, report = _run(capsys, "selftest", "--state-dir", box, "--reader", "none", "--camera", "none", "--json")
        assert code == 0, report  # the new certificate works
        assert _next_event(listener, processor).header["device_id"] == init["device_id"]
        server.join(timeout=30)

        code, revoked = _run(capsys, "central", "revoke", init["device_id"], "--dir", str(central.dir), "--json")
        assert code == 0 and revoked["revoked"] is True
        _run(capsys, "selftest", "--state-dir", box, "--reader", "none", "--camera", "none", "--json")
        with pytest.raises(EventRejected) as rejected:
            _next_event(listener, processor)
        assert rejected.value.reason in ("revoked_device", "unknown_device")


def test_first_event_is_accepted_by_central_listen(tmp_path: Path, central: Central) -> None:
    """A freshly enrolled box's first event (the selftest heartbeat) is printed by `idstation central listen`."""
    import subprocess
    import sys

    from idstation.provisioning.bundle import apply_bundle
    from idstation.provisioning.identity import init_device
    from idstation.provisioning.selftest import check_broker

    box = init_device(tmp_path / "box", site="hn-bd-001", counter="c01", fleet_ca_fingerprint=central.ca.fingerprint)
    central.enroller.expect(box.pairing)
    csr = (box.device.identity_dir / "device.csr").read_bytes()
    apply_bundle(tmp_path / "box", central.enroller.enroll(csr, token=box.pairing.token).to_bytes())
    central.reload()  # device.acl now names the box (production: the idstation-broker-acl.path unit)
    time.sleep(0.5)
    key = tmp_path / "central_key.pem"
    key.write_bytes(
        central.central_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    password = tmp_path / "central.pw"
    password.write_text(PASSWORDS["central"])
    argv = [sys.executable, "-m", "idstation.agent.cli", "central", "listen", "--broker", central.claim_url]
    argv += ["--registry", str(central.registry.path), "--key", str(key), "--ca", str(central.ca.directory / "ca.crt")]
    argv += ["--username", "central", "--password-file", str(password), "--protocol", "3.1.1"]
    argv += ["--count", "1", "--timeout", "40", "--json"]
    listener = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for _ in range(40):  # bounded: publish until the (clean-session) listener has subscribed and prints
            assert check_broker(tmp_path / "box").ok
            try:
                out, _ = listener.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            pytest.fail("central listen accepted nothing")
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.communicate(timeout=10)
    assert listener.returncode == 0
    event = json.loads(out.splitlines()[0])
    assert box.device.device_id in json.dumps(event) and "heartbeat" in json.dumps(event)
