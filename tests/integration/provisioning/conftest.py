"""A real mosquitto for provisioning: a claim listener (TLS, username/password, ACL limited to the
provisioning topics) and a device listener (mTLS with fleet-CA certificates, identity as username),
plus the central side (fleet CA, registry, enroller) in tmp_path. Loopback only."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from idstation.agent.sim.broker import free_port
from idstation.mqtt.central.broker_config import mosquitto_conf, write_acls
from idstation.mqtt.central.enroller import Enroller, EnrolPolicy
from idstation.mqtt.central.fleet_ca import FleetCA
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.enrolment.session import BrokerAccess

from tests.fixtures.procs import stop_process

PASSWORDS = {"claim": "claim-secret", "enroller": "enroller-secret", "central": "central-secret"}


@dataclass
class Central:
    """The central side plus the broker it runs."""

    dir: Path
    ca: FleetCA
    registry: Registry
    enroller: Enroller
    central_key: x25519.X25519PrivateKey
    claim_port: int
    device_port: int
    proc: subprocess.Popen[bytes] | None = None

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its configuration (and the CRL)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    @property
    def claim_url(self) -> str:
        return f"mqtts://localhost:{self.claim_port}"

    @property
    def device_url(self) -> str:
        return f"mqtts://localhost:{self.device_port}"

    def access(self, user: str, *, password: str | None = None) -> BrokerAccess:
        return BrokerAccess(
            self.claim_url, user, PASSWORDS[user] if password is None else password, str(self.ca.directory / "ca.crt")
        )


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed")
    d = tmp_path / "central"
    ca = FleetCA.create(d / "ca")
    registry = Registry(d / "registry", create=True)
    key_pem, cert_pem = ca.issue_server(["localhost", "127.0.0.1"])
    broker_dir = d / "broker"
    broker_dir.mkdir()
    (broker_dir / "server.key").write_bytes(key_pem)
    (broker_dir / "server.crt").write_bytes(cert_pem)
    (broker_dir / "ca.crt").write_bytes(ca.cert_pem)
    write_acls(broker_dir, registry)  # the production configuration and ACL generator, tested here
    pw = broker_dir / "passwords"
    pw.write_text("".join(f"{u}:{p}\n" for u, p in PASSWORDS.items()))
    subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True)
    claim_port, device_port = free_port(), free_port()
    conf = broker_dir / "mosquitto.conf"
    conf.write_text(
        mosquitto_conf(
            broker_dir,
            ca.directory / "crl.pem",
            claim_port=claim_port,
            device_port=device_port,
            bind="127.0.0.1",
            run_as_root=os.geteuid() == 0,
            verbose=True,
        )
    )
    central_key = x25519.X25519PrivateKey.generate()
    pub = central_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    policy = EnrolPolicy(f"mqtts://localhost:{device_port}", pub.decode("ascii"))
    with (broker_dir / "broker.log").open("wb") as log:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_listening(proc, [claim_port, device_port], broker_dir)
            # as `central enroll`/`revoke` do: device.acl follows the registry (applied on SIGHUP)
            enroller = Enroller(ca, registry, policy, on_registry_change=lambda reg: write_acls(broker_dir, reg))
            yield Central(d, ca, registry, enroller, central_key, claim_port, device_port, proc)
        finally:
            stop_process(proc)


def _wait_listening(proc: subprocess.Popen[bytes], ports: list[int], broker_dir: Path) -> None:
    deadline = time.monotonic() + 10
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited: {(broker_dir / 'broker.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.2):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)
    if pending:
        pytest.fail("mosquitto did not listen in time")
