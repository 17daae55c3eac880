"""`idstation demo`: the README's first command, end to end in a subprocess."""

from __future__ import annotations

import json

import pytest

from tests.integration.agent.demo_run import demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_json_prints_each_event_then_the_summary_and_exits_0(broker: str) -> None:
    if broker == "amqtt":
        pytest.importorskip("amqtt")
    done = demo("--taps", "3", "--json", "--broker", broker)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # stdout is JSON only
    summary = lines[-1]["summary"]
    assert set(summary) == {"taps", "accepted", "duplicates", "lost"}
    assert (summary["taps"], summary["accepted"], summary["lost"]) == (3, 3, 0)  # a QoS 1 resend may duplicate
    events = lines[:-1]
    assert [e["kind"] for e in events] == ["identity"] * 3
    assert all(e["verification"]["passive"]["result"] == "ok" for e in events)
    assert sorted(e["seq"] for e in events) == [1, 2, 3]


def test_demo_outage_buffers_and_catches_up() -> None:
    done = demo("--taps", "4", "--outage", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.splitlines()[-1])["summary"]
    assert (summary["taps"], summary["accepted"], summary["lost"]) == (4, 4, 0)
    assert "outage" in done.stderr


def test_demo_human_output_ends_with_a_summary() -> None:
    done = demo("--taps", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].startswith("summary: 2 taps, 2 accepted (2 verified)")
    assert '"event"' not in done.stdout  # logs go to stderr


def test_demo_rejects_a_bad_tap_count() -> None:
    assert demo("--taps", "0").returncode == 2
