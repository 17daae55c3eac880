"""`central listen --csca DIR` re-verifies the chip of every identity event, end to end: a box reads
a (virtual) card with the Active Authentication challenge bound to the event id, publishes over a
real mosquitto, and the listener prints and stores its own verdict beside the box's; a forged
citizen is rejected; the same genuine data replayed under a new event id proves no presence."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from idstation.agent import flow
from idstation.agent.config import Config
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.sim.profiles import builtin_profiles, image_for, qr_text, test_csca_pem
from idstation.agent.wiring import ChipReader, MqttSink, identity_private
from idstation.hal.reader_sim import SimReader
from idstation.mqtt.central.store import open_store, sqlite_url

from ..helpers import make_publisher

pytestmark = pytest.mark.integration


def _read_an() -> object:
    """What the box's wiring returns for the 'an' card: (verdict, ChipRead with its event id)."""
    image = image_for("an")
    reader = SimReader()
    reader.insert(VirtualChip(image), atr=image.atr, extended_length=True, max_response=65536)
    conn = reader.wait_for_card(1.0)
    verdict, read = ChipReader(Config(csca_dir=None, trust_test_csca=True))(conn, qr_text(builtin_profiles()["an"]))
    assert verdict == flow.VERDICT_VERIFIED
    return read


def _wait_subscribed(proc: subprocess.Popen) -> None:
    assert proc.stderr is not None
    for _ in range(400):
        line = proc.stderr.readline()
        if not line or "central_subscribed" in line:
            return


def test_listen_with_csca_records_the_centres_verdict_and_rejects_a_forged_citizen(
    mosquitto, registry, central_key, enrol, tmp_path: Path
) -> None:
    csca = tmp_path / "csca"
    csca.mkdir()
    (csca / "test-csca.pem").write_bytes(test_csca_pem())
    state = tmp_path / "central.sqlite"
    device = enrol()
    argv = [sys.executable, "-m", "idstation.agent.cli", "central", "listen", "--broker", mosquitto.url,
            "--registry", str(registry.path), "--key", str(central_key.path), "--csca", str(csca),
            "--state", str(state), "--no-shared", "--json", "--count", "3", "--timeout", "90"]  # fmt: skip
    env = {**os.environ, "IDSTATION_LOG_LEVEL": "info"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_subscribed(proc)
        pub = make_publisher(mosquitto.url, device, central_key.public, tmp_path / "outbox.sqlite")
        pub.start()
        read = _read_an()
        MqttSink(pub).identity(flow.VERIFIED, None, read)  # the box's own path: the event takes the read's id
        private = identity_private(flow.VERIFIED, None, read).model_dump(mode="json", exclude_none=True)
        forged = copy.deepcopy(private)
        forged["citizen"]["id_number"] = "001099000001"
        forged_id = pub.submit_identity(forged)
        replay_id = pub.submit_identity(private)  # genuine data and signature, a new event id
        assert pub.drain(60)
        out, err = proc.communicate(timeout=120)
        pub.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in out.splitlines()]  # with the box's retained status at connect
    lines = {line["event_id"]: line for line in events if line["kind"] == "identity"}
    assert set(lines) == {read.event_id, replay_id}  # type: ignore[attr-defined]
    proven = {"passive": "verified", "data_match": True, "presence": "proven"}
    assert lines[read.event_id]["centre_verification"] == proven  # type: ignore[attr-defined]
    assert lines[replay_id]["centre_verification"]["presence"] == "not_proven"
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parents[4] / "docs/vectors/json-line.schema.json").read_text("utf-8"))
    jsonschema.validate(lines[read.event_id], schema)  # type: ignore[attr-defined]
    assert forged_id not in lines and "chip_data_mismatch" in err
    assert "001099000001" not in err and private["citizen"]["full_name"] not in err
    store = open_store(sqlite_url(state))
    try:
        by_id = {e.event_id: e.header for e in store.events_after(0, 10)}
    finally:
        store.close()
    assert by_id[read.event_id]["centre_verification"] == proven  # type: ignore[attr-defined]
    assert forged_id not in by_id
    exported = subprocess.run(
        [sys.executable, "-m", "idstation.agent.cli", "central", "export", "--store", sqlite_url(state),
         "--key", str(central_key.path), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    again = {line["event_id"]: line for line in map(json.loads, exported.stdout.splitlines())}
    assert again[read.event_id]["centre_verification"] == proven  # type: ignore[attr-defined]
