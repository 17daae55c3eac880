"""The registry at scale: with 50,000 enrolled devices, a listener's registry (watching in the
background) enforces a revocation and sees an enrolment made by another process's tool, without
a full reload and while lookups keep being served. Latencies are measured in bench/central.py."""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.registry import Registry

from tests.integration.central.fleet import write_devices

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLEET = 50_000


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def big_registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("registry")
    devices = write_devices(path, FLEET)
    return path, devices


def test_a_revocation_and_an_enrolment_reach_a_watching_registry_of_50000_devices(big_registry) -> None:
    path, devices = big_registry
    listener_view = Registry(path)
    listener_view.watch(interval=0.1, full_scan_s=3600)  # no listing: the change journal must do
    try:
        assert len(listener_view) == FLEET
        victim = devices[FLEET // 2]
        before = listener_view.lookup(devices[0].device_id)
        lookups = 0
        stop = threading.Event()

        def look() -> None:  # the message thread: keeps looking up while the change lands
            nonlocal lookups
            while not stop.is_set() and lookups < 10_000_000:
                listener_view.by_key_id(devices[lookups % FLEET].key_id)
                lookups += 1

        reader = threading.Thread(target=look)
        reader.start()
        tool = Registry(path)  # `idstation central revoke` / `enroll` in another process
        tool.revoke(victim.device_id, reason="stolen")
        fresh = tool.add_device("box-new", "site-new", "c0", Ed25519PrivateKey.generate().public_key())
        revoked = _wait(lambda: listener_view.by_key_id(victim.key_id) is None, 5.0)
        enrolled = _wait(lambda: listener_view.by_key_id(fresh.key_id) is not None, 5.0)
        stop.set()
        reader.join(timeout=10)
        assert revoked, "the revocation was not enforced"
        assert enrolled, "the enrolment was not seen"
        assert lookups > 0
        assert listener_view.lookup(devices[0].device_id) is before  # not re-read: no full reload
        assert len(listener_view) == FLEET + 1
    finally:
        listener_view.close()


def test_a_record_removed_by_hand_and_a_lifted_revocation_are_seen_by_a_watching_registry(tmp_path) -> None:
    devices = write_devices(tmp_path, 20)
    view = Registry(tmp_path)
    view.watch(interval=0.05, full_scan_s=0.2)  # a hand-made change is seen at the next listing
    try:
        tool = Registry(tmp_path)
        tool.revoke(devices[1].device_id)
        assert _wait(lambda: view.is_revoked(devices[1].device_id), 5.0)
        tool.unrevoke(devices[1].device_id)
        assert _wait(lambda: view.lookup(devices[1].device_id) is not None, 5.0)
        (tmp_path / "devices" / f"{devices[2].device_id}.json").unlink()
        assert _wait(lambda: view.lookup(devices[2].device_id) is None, 5.0)
        assert view.lookup(devices[3].device_id) is not None
    finally:
        view.close()
