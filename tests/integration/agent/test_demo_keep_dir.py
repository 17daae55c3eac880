"""`idstation demo --keep-dir DIR`: what the demo made stays usable by an outside verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.receipt import parse_receipt_keys
from idstation.mqtt.seal import key_id_for, load_central_private_key, load_central_public_key, load_signing_key

from tests.integration.agent.demo_run import demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_kept_directory_holds_the_keys_and_registry_that_verify_the_demos_events(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    done = demo("--taps", "2", "--json", "--keep-dir", str(kept))
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()[:-1]]
    central = load_central_private_key(kept / "central_key.pem")
    assert (
        load_central_public_key(kept / "central.pub.pem").public_bytes_raw() == central.public_key().public_bytes_raw()
    )
    registry = Registry(kept / "registry")
    record = registry.by_key_id(events[0]["key_id"])  # the registry knows the key that signed the events
    assert record is not None
    assert record.device_id == events[0]["device_id"]
    receipt_public = load_signing_key(kept / "receipt_key.pem").public_key()
    box_trusts = parse_receipt_keys((kept / "box" / "identity" / "receipt_keys.pem").read_bytes())
    assert key_id_for(receipt_public) in {key_id_for(k) for k in box_trusts}


def test_a_keep_dir_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    assert demo("--taps", "1", "--keep-dir", str(tmp_path)).returncode == 2
