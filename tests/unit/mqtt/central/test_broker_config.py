"""The one ACL generator: driven by the registry, each device only its own topics, the centre all."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.broker_config import (
    MAX_INFLIGHT_MESSAGES,
    MAX_PACKET_SIZE,
    MAX_QUEUED_BYTES,
    MAX_QUEUED_MESSAGES,
    claim_acl,
    mosquitto_conf,
    registry_acl,
)
from idstation.mqtt.central.registry import Registry


def _blocks(acl: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = None
    for line in acl.splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            blocks[user] = []
        elif user and line.startswith("topic "):
            blocks[user].append(line)
    return blocks


def test_each_device_writes_only_its_own_event_topics_and_reads_only_its_receipts(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry", create=True)
    registry.add_device("box-a", "hn-01", "c01", Ed25519PrivateKey.generate().public_key())
    registry.add_device("box-b", "hn-01", "c02", Ed25519PrivateKey.generate().public_key())
    blocks = _blocks(registry_acl(registry))
    assert blocks["box-a"] == [
        "topic write idstation/v1/hn-01/c01/identity",
        "topic write idstation/v1/hn-01/c01/read_failed",
        "topic write idstation/v1/hn-01/c01/status",
        "topic write idstation/v1/hn-01/c01/heartbeat",
        "topic read idstation/v1/hn-01/c01/receipt",
    ]
    assert all("c02" not in line for line in blocks["box-a"])
    assert not any("#" in line or "+" in line for lines in blocks.values() for line in lines)


def test_a_revoked_device_loses_its_lines(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry", create=True)
    registry.add_device("box-a", "hn-01", "c01", Ed25519PrivateKey.generate().public_key())
    registry.revoke("box-a", reason="stolen")
    assert "box-a" not in _blocks(registry_acl(registry))


def test_the_centre_reads_everything_and_alone_writes_receipts() -> None:
    blocks = _blocks(claim_acl())
    assert blocks["central"] == ["topic read idstation/v1/#", "topic write idstation/v1/+/+/receipt"]
    assert not any("receipt" in line for user, lines in blocks.items() if user != "central" for line in lines)


def test_the_shipped_configuration_caps_the_packet_size(tmp_path: Path) -> None:
    conf = mosquitto_conf(tmp_path, tmp_path / "crl.pem")
    assert f"max_packet_size {MAX_PACKET_SIZE}" in conf.splitlines()
    assert MAX_PACKET_SIZE == 4 * 1024 * 1024 + 64 * 1024


def test_the_shipped_configuration_lets_the_centres_session_hold_a_large_backlog(tmp_path: Path) -> None:
    lines = mosquitto_conf(tmp_path, tmp_path / "crl.pem").splitlines()
    assert f"max_queued_messages {MAX_QUEUED_MESSAGES}" in lines  # mosquitto's default: 1,000
    assert f"max_queued_bytes {MAX_QUEUED_BYTES}" in lines
    assert f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}" in lines  # mosquitto's default: 20
    assert MAX_QUEUED_MESSAGES >= 1_000_000 and MAX_INFLIGHT_MESSAGES >= 1000
