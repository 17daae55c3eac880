"""Fixtures: a fleet CA, a registry, an enroller and a freshly initialised box, all in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from idstation.agent.cli import main
from idstation.mqtt.central.enroller import Enroller, EnrolPolicy
from idstation.mqtt.central.fleet_ca import FleetCA
from idstation.mqtt.central.registry import Registry
from idstation.provisioning.identity import InitResult, init_device


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    """``idstation ARGV`` in this process: its exit code and its --json document (else ``{"text": ...}``)."""
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.lstrip().startswith("{") else {"text": out})


@pytest.fixture
def central_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A centre directory made by ``central init-ca`` (fleet CA, registry, keys)."""
    d = tmp_path / "central"
    code, doc = run_cli(
        capsys, "central", "init-ca", "--dir", str(d), "--broker-url", "mqtts://broker.example:8883", "--json"
    )
    assert code == 0 and doc["ok"]
    return d


@pytest.fixture
def central_key() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


@pytest.fixture
def fleet_ca(tmp_path: Path) -> FleetCA:
    return FleetCA.create(tmp_path / "central" / "ca")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "central" / "registry", create=True)


@pytest.fixture
def enroller(fleet_ca: FleetCA, registry: Registry, central_key: x25519.X25519PrivateKey) -> Enroller:
    pem = central_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Enroller(fleet_ca, registry, EnrolPolicy("mqtts://broker.example:8883", pem.decode("ascii")))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "box"


@pytest.fixture
def box(state_dir: Path, fleet_ca: FleetCA) -> InitResult:
    """A never-enrolled box whose technician confirmed this fleet CA's fingerprint."""
    return init_device(state_dir, site="hn-bd-001", counter="c01", fleet_ca_fingerprint=fleet_ca.fingerprint)


def csr_of(result: InitResult) -> bytes:
    return (result.device.identity_dir / "device.csr").read_bytes()
