"""Hostile registry files: skipped and logged, never a crash, never a blocked lookup."""

from __future__ import annotations

import json
import os
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.registry import Registry


def _in_thread(fn, timeout: float = 10.0):
    """Run ``fn`` in a thread; None if it did not finish (a blocked read)."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else None


def _registry_with_box1(tmp_path) -> tuple[Registry, str]:
    reg = Registry(tmp_path, create=True)
    rec = reg.add_device("box-1", "s", "c", Ed25519PrivateKey.generate().public_key())
    return reg, rec.key_id


def test_a_fifo_in_revoked_neither_blocks_lookups_nor_unrevokes(tmp_path) -> None:
    _, key_id = _registry_with_box1(tmp_path)
    os.mkfifo(tmp_path / "revoked" / "box-1.json")
    reader = Registry(tmp_path)
    assert _in_thread(lambda: reader.by_key_id(key_id, include_revoked=True) is not None) is True
    assert reader.lookup("box-1") is None  # its presence still revokes (fail closed)


def test_a_fifo_in_devices_is_skipped(tmp_path) -> None:
    _registry_with_box1(tmp_path)
    os.mkfifo(tmp_path / "devices" / "box-2.json")
    reader = Registry(tmp_path)
    assert _in_thread(lambda: [r.device_id for r in reader.devices()]) == ["box-1"]


def test_a_deeply_nested_record_is_skipped_on_every_lookup(tmp_path) -> None:
    _, key_id = _registry_with_box1(tmp_path)
    (tmp_path / "devices" / "box-2.json").write_bytes(b"[" * 60_000)
    (tmp_path / "revoked" / "box-3.json").write_bytes(b"{" * 60_000)
    reader = Registry(tmp_path)
    for _ in range(3):
        assert reader.by_key_id(key_id).device_id == "box-1"
        assert [r.device_id for r in reader.devices()] == ["box-1"]
    assert reader.is_revoked("box-3")


def test_an_oversized_record_is_skipped(tmp_path) -> None:
    _registry_with_box1(tmp_path)
    path = tmp_path / "devices" / "box-1.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "padding": "x" * 200_000}))
    reader = Registry(tmp_path)
    assert reader.devices() == []


def test_a_symlinked_record_is_not_followed(tmp_path) -> None:
    _registry_with_box1(tmp_path)
    os.symlink("/dev/zero", tmp_path / "devices" / "box-2.json")
    reader = Registry(tmp_path)
    assert _in_thread(lambda: [r.device_id for r in reader.devices()]) == ["box-1"]
