"""`idstation central listen`: JSON lines on stdout for accepted events, exit codes for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .helpers import PRIVATE, make_publisher

pytestmark = pytest.mark.integration


def _listen(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "idstation.agent.cli", "central", "listen", *args]
    env = {**os.environ, "IDSTATION_LOG_LEVEL": "info"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _start(*args: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "idstation.agent.cli", "central", "listen", *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_subscribed(proc: subprocess.Popen) -> None:
    for _ in range(200):
        line = proc.stderr.readline()
        if not line or "central_subscribed" in line:
            return


def test_listen_prints_one_json_line_per_accepted_event(mosquitto, registry, central_key, enrol, tmp_path) -> None:
    device = enrol()
    proc = _start(
        "--broker", mosquitto.url, "--registry", str(registry.path), "--key", str(central_key.path),
        "--group", "g1", "--json", "--count", "3", "--state", str(tmp_path / "state.sqlite"), "--timeout", "30",
    )  # fmt: skip
    _wait_subscribed(proc)
    pub = make_publisher(mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite")
    pub.start()
    identity = pub.submit_identity(PRIVATE)
    failed = pub.submit_read_failed("access_denied", "no key opened the chip")
    assert pub.drain(10)
    out, _err = proc.communicate(timeout=30)
    pub.stop()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in out.splitlines()]
    by_id = {line["event_id"]: line for line in lines}
    assert identity in by_id and failed in by_id
    for line in lines:
        for key in ("event_id", "device_id", "counter_id", "seq", "kind", "created_at"):
            assert key in line
    assert by_id[identity]["citizen"] == PRIVATE["citizen"]
    assert by_id[identity]["verification"] == PRIVATE["verification"]
    assert by_id[failed]["reason"] == "access_denied"


def test_an_empty_registry_accepts_nothing(mosquitto, central_key, enrol, tmp_path) -> None:
    device = enrol()  # enrolled in the fixture's registry, not in the empty one the listener reads
    empty = tmp_path / "empty-registry"
    proc = _start(
        "--broker", mosquitto.url, "--registry", str(empty), "--key", str(central_key.path), "--json",
        "--timeout", "3", "--state", str(tmp_path / "state.sqlite"),
    )  # fmt: skip
    _wait_subscribed(proc)
    pub = make_publisher(mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite")
    pub.start()
    pub.submit_identity(PRIVATE)
    assert pub.drain(10)
    out, err = proc.communicate(timeout=30)
    pub.stop()
    assert out == ""
    assert "unknown_device" in err
    assert PRIVATE["citizen"]["full_name"] not in err


def test_a_bad_key_file_is_a_configuration_error(mosquitto, registry, tmp_path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key", encoding="utf-8")
    result = _listen("--broker", mosquitto.url, "--registry", str(registry.path), "--key", str(bad))
    assert result.returncode == 8
    assert "error" in result.stderr


def test_a_bad_broker_url_is_a_usage_error(registry, central_key) -> None:
    result = _listen("--broker", "http://x", "--registry", str(registry.path), "--key", str(central_key.path))
    assert result.returncode == 2


def test_an_unreachable_broker_is_a_broker_error(registry, central_key, tmp_path) -> None:
    result = _listen(
        "--broker", "mqtt://127.0.0.1:1", "--registry", str(registry.path), "--key", str(central_key.path),
        "--connect-timeout", "1", "--state", str(tmp_path / "s.sqlite"),
    )  # fmt: skip
    assert result.returncode == 9


def _metric(body: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name + " "))


def test_max_batch_bounds_the_events_of_each_store_transaction(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    import socket

    import httpx

    from .helpers import wait_for

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    device = enrol()
    proc = _start(
        "--broker", mosquitto.url, "--registry", str(registry.path), "--key", str(central_key.path), "--json",
        "--timeout", "60", "--state", str(tmp_path / "state.sqlite"), "--metrics", str(port),
        "--max-batch", "1", "--max-wait", "1.5",
    )  # fmt: skip
    _wait_subscribed(proc)
    pub = make_publisher(mosquitto.url, device, central_key.public, tmp_path / "ob.sqlite")
    for _ in range(6):  # queued in the outbox first: published back to back once connected
        pub.submit_read_failed("timeout", "no card")
    pub.start()
    try:
        assert pub.drain(20)
        url = f"http://127.0.0.1:{port}/metrics"
        assert wait_for(lambda: _metric(httpx.get(url, timeout=5).text, "idstation_batch_events_sum") >= 6, 20)
        body = httpx.get(url, timeout=5).text
    finally:
        pub.stop()
        proc.terminate()  # SIGTERM: a clean exit
        out, _err = proc.communicate(timeout=60)
    assert sum('"read_failed"' in line for line in out.splitlines()) == 6
    count, total = _metric(body, "idstation_batch_events_count"), _metric(body, "idstation_batch_events_sum")
    assert count == total >= 6  # every transaction held one event
    # where the pipeline waited: before the box's events came, the check thread waited for deliveries
    waits = {line.split("{")[1].split("}")[0]: float(line.split()[-1]) for line in body.splitlines()
             if line.startswith("idstation_pipeline_wait_seconds_total{")}  # fmt: skip
    assert waits['thread="check",waiting_for="deliveries"'] > 0
    assert set(waits) >= {'thread="check",waiting_for="commit"', 'thread="commit",waiting_for="check"'}


@pytest.mark.parametrize(
    "option",
    [
        ("--max-batch", "0"),
        ("--max-batch", "10001"),
        ("--max-wait", "-1"),
        ("--receipt-interval", "61"),
        ("--receipt-max-interval", "-0.5"),
        ("--receipt-max-interval", "61"),
    ],
)
def test_a_batch_option_out_of_range_is_a_usage_error(registry, central_key, option) -> None:
    result = _listen(
        "--broker", "mqtt://127.0.0.1:1", "--registry", str(registry.path), "--key", str(central_key.path), *option
    )  # fmt: skip
    assert result.returncode == 2
    assert option[0] in result.stderr
