"""A simulated fleet for the centre's scale tests and bench/central.py: many enrolled devices
written straight into a registry directory (the record format of mqtt/central/registry.py,
without the per-record fsync of ``add_device``, which would take minutes for 50,000)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.seal import key_id_for


@dataclass(frozen=True)
class SimDevice:
    device_id: str
    site: str
    counter: str
    key: Ed25519PrivateKey
    key_id: str


def device_name(i: int) -> tuple[str, str, str]:
    """(device_id, site, counter) of the i-th simulated box: 4 counters per site."""
    return f"box-{i:06d}", f"site-{i // 4:05d}", f"c{i % 4}"


def write_devices(registry_dir: Path, count: int, *, start: int = 0) -> list[SimDevice]:
    devices_dir = registry_dir / "devices"
    devices_dir.mkdir(parents=True, exist_ok=True)
    (registry_dir / "revoked").mkdir(exist_ok=True)
    out = []
    for i in range(start, start + count):
        device_id, site, counter = device_name(i)
        key = Ed25519PrivateKey.generate()
        public = key.public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        key_id = key_id_for(public)
        record = {
            "device_id": device_id,
            "site": site,
            "counter": counter,
            "key_id": key_id,
            "public_key_pem": pem.decode("ascii"),
            "certificate_pem": None,
            "enrolled_at": "2026-01-01T00:00:00Z",
        }
        (devices_dir / f"{device_id}.json").write_text(json.dumps(record), encoding="utf-8")
        out.append(SimDevice(device_id, site, counter, key, key_id))
    return out
