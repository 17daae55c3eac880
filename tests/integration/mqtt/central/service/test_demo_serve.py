"""`idstation demo --serve`: the whole chain with the service, printing the pages' URLs with tokens."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from idstation.agent.sim.broker import free_port

from tests.integration.mqtt.central.service.chain import CLI

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_serve_prints_working_urls_and_keeps_placing_cards_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    with (tmp_path / "demo.err").open("wb") as err:
        proc = subprocess.Popen([*CLI, "demo", "--serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().decode() for _ in range(2)]
        clerk = re.fullmatch(r"clerk page:\s+(http://127\.0\.0\.1:\d+/counter/[^#]+)#token=(\S+)\n", lines[0])
        fleet = re.fullmatch(r"fleet page:\s+(http://127\.0\.0\.1:\d+/fleet)#token=(\S+)\n", lines[1])
        assert clerk and fleet, (lines, (tmp_path / "demo.err").read_text(errors="replace")[-3000:])
        assert httpx.get(clerk.group(1), timeout=10).status_code == 200
        api = clerk.group(1).replace("/counter/", "/v1/counters/") + "/identities/latest"
        headers = {"Authorization": f"Bearer {clerk.group(2)}"}
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while len(seen) < 2 and time.monotonic() < deadline:  # citizens keep coming
            response = httpx.get(api, headers=headers, timeout=10)
            if response.status_code == 200:
                seen.add(response.json()["event_id"])
            time.sleep(0.5)
        assert len(seen) >= 2
        devices = httpx.get(
            f"http://127.0.0.1:{port}/v1/fleet", headers={"Authorization": f"Bearer {fleet.group(2)}"}, timeout=10
        ).json()["devices"]
        assert [d["state"] for d in devices] == ["online"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
