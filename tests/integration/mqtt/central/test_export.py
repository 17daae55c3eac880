"""`idstation central export`: every committed event exactly once, in commit order, resumable —
even when the listener is killed -9 between its commit and its delivery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from ..helpers import wait_for
from .test_listener_store import Box

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "idstation.agent.cli", "central"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def _listen(mosquitto, registry, central_key, store_url: str, fault: str | None) -> subprocess.Popen:
    env = {**os.environ, "IDSTATION_LOG_LEVEL": "info"}
    env.pop("IDSTATION_TEST_FAULT", None)
    if fault:
        env["IDSTATION_TEST_FAULT"] = fault
    argv = [*CLI, "listen", "--broker", mosquitto.url, "--registry", str(registry.path), "--key", str(central_key.path),
            "--store", store_url, "--json", "--no-shared", "--client-id", "centre-1", "--timeout", "60"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for _ in range(300):  # bounded: until subscribed (or the process ended)
        line = proc.stderr.readline()
        if not line or "central_subscribed" in line:
            break
    return proc


def _export(store_url: str, after: int = 0) -> list[dict]:
    done = _run("export", "--store", store_url, "--after", str(after), "--json")
    assert done.returncode == 0, done.stderr[-500:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_listener_killed_between_commit_and_delivery_loses_nothing_in_the_export(
    mosquitto, registry, central_key, enrol, store_url
) -> None:
    assert _run("migrate", "--store", store_url).returncode == 0
    box = Box(mosquitto.port, enrol(), central_key.public)
    first = _listen(mosquitto, registry, central_key, store_url, fault="after_commit")
    sent = box.send(list(range(1, 11)))
    out, _err = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL  # died after its first commit, before any ack or delivery
    assert out == ""
    second = _listen(mosquitto, registry, central_key, store_url, fault=None)  # same session: redelivery
    assert wait_for(lambda: len(_export(store_url)) >= len(sent), 60)
    second.send_signal(signal.SIGTERM)
    out, _err = second.communicate(timeout=30)
    box.close()
    # the listener's own output is at least once: the events committed but never delivered
    # before the kill come again from the broker and are delivered by the second listener
    printed = [json.loads(line)["event_id"] for line in out.splitlines()]
    assert sorted(printed) == sorted(sent)
    lines = _export(store_url)
    assert [line["event_id"] for line in lines] == sent or sorted(line["event_id"] for line in lines) == sorted(sent)
    assert len({line["event_id"] for line in lines}) == len(lines) == len(sent)  # each exactly once
    cursors = [line["cursor"] for line in lines]
    assert cursors == sorted(cursors)
    assert all(line["kind"] == "identity" and line["sealed"] for line in lines)  # no --key: personal part stays sealed
    resumed = _export(store_url, after=cursors[4])
    assert [line["event_id"] for line in resumed] == [line["event_id"] for line in lines[5:]]


def test_export_opens_identity_events_with_the_central_key(mosquitto, registry, central_key, enrol, tmp_path) -> None:
    store_url = f"sqlite://{tmp_path / 'central.sqlite'}"
    box = Box(mosquitto.port, enrol(), central_key.public)
    listener = _listen(mosquitto, registry, central_key, store_url, fault=None)
    [event_id] = box.send([1])
    assert wait_for(lambda: len(_export(store_url)) == 1, 30)
    listener.send_signal(signal.SIGTERM)
    listener.communicate(timeout=30)
    box.close()
    done = _run("export", "--store", store_url, "--json", "--key", str(central_key.path))
    [line] = [json.loads(x) for x in done.stdout.splitlines()]
    assert line["event_id"] == event_id and line["cursor"] >= 1
    assert line["citizen"]["id_number"] == "079203004512"
    assert "sealed" not in line


def test_export_follow_prints_new_commits_as_they_come_and_stops_on_sigterm(store_url: str) -> None:
    from idstation.mqtt.central.store import open_store

    from .conftest import incoming

    store = open_store(store_url, migrate=True)
    first = store.record([incoming(1), incoming(2)])
    after = str(first[0].cursor)
    argv = [*CLI, "export", "--store", store_url, "--after", after, "--follow", "--json", "--poll", "0.1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(proc.stdout.readline())["cursor"] == first[1].cursor  # resumed after the given cursor
        [later] = store.record([incoming(3)])
        assert json.loads(proc.stdout.readline())["cursor"] == later.cursor
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        store.close()
    assert proc.returncode == 0
