"""Shared builders for the event transport's unit tests."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer

CITIZEN = {
    "id_number": "001090123456",
    "full_name": "Nguyễn Văn Bình",
    "date_of_birth": "01/01/1990",
    "permanent_address": "Phường Tân Định, Quận 1, TP Hồ Chí Minh",
}
PRIVATE = {"source": "chip", "citizen": CITIZEN, "verification": {"passive_auth": "valid"}}


class World:
    """One centre, one registry, devices enrolled in it."""

    def __init__(self, root: Path) -> None:
        self.central = X25519PrivateKey.generate()
        self.registry = Registry(root / "registry", create=True)
        self.root = root
        self._clock = itertools.count()

    def device(self, device_id: str = "box-1", site: str = "hn-01", counter: str = "c01", enrol: bool = True):
        key = Ed25519PrivateKey.generate()
        if enrol:
            self.registry.add_device(device_id, site, counter, key.public_key())
        return EventBuilder(device_id, site, counter, Signer(key), self.central.public_key(), boot_id="boot-1")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)
