"""GET /v1/fleet: every enrolled device with its state and counts, no personal data."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.integration.mqtt.central.service.centre import PERSONAL, Centre, auth

pytestmark = pytest.mark.integration


def test_an_operator_sees_every_device_with_state_and_counts(centre: Centre, serve: Callable[..., str]) -> None:
    a = centre.box("box-1")
    b = centre.box("box-2", site="hcm-01", counter="c09")
    centre.box("box-3", counter="c03")  # enrolled, never heard from
    a.status("online", {"outbox": {"depth": 3, "awaiting_receipt": 2, "oldest_awaiting_s": 40}})
    a.identity()
    a.read_failed("card_removed")
    a.read_failed("card_removed")
    a.read_failed("qr_not_visible")
    b.status("alarm", {"alarm": "outbox_full"})
    response = httpx.get(serve() + "/v1/fleet", headers=auth(centre.tokens["operator"]))
    assert response.status_code == 200
    devices = {d["device_id"]: d for d in response.json()["devices"]}
    assert set(devices) == {"box-1", "box-2", "box-3"}
    one = devices["box-1"]
    assert (one["site"], one["counter"], one["state"]) == ("hn-01", "c01", "online")
    assert one["outbox"] == 3 and one["awaiting_receipt"] == 2 and one["oldest_unreceipted_s"] == 40
    assert one["failures"] == {"card_removed": 2, "qr_not_visible": 1}
    assert one["last_seen"] is not None and one["last_event_at"] is not None
    assert len(one["events_per_hour"]) == 24 and sum(one["events_per_hour"]) == 4  # identity + 3 read_failed
    assert devices["box-2"]["events_per_hour"] == [0] * 24  # telemetry is not counted
    assert devices["box-2"]["state"] == "alarm"
    assert devices["box-3"]["state"] == "offline" and devices["box-3"]["last_seen"] is None
    assert not any(p in json.dumps(response.json(), ensure_ascii=False) for p in PERSONAL)


def test_a_counter_client_sees_only_its_own_counters_devices(centre: Centre, serve: Callable[..., str]) -> None:
    centre.box("box-1")
    centre.box("box-2", counter="c02")
    response = httpx.get(serve() + "/v1/fleet", headers=auth(centre.tokens["c01"]))
    assert [d["device_id"] for d in response.json()["devices"]] == ["box-1"]


def test_the_last_will_turns_a_device_offline(centre: Centre, serve: Callable[..., str]) -> None:
    box = centre.box("box-1")
    box.status("online")
    url = serve()
    assert (
        httpx.get(url + "/v1/fleet", headers=auth(centre.tokens["operator"])).json()["devices"][0]["state"] == "online"
    )
    box.status("offline", {"reason": "connection_lost"})
    assert (
        httpx.get(url + "/v1/fleet", headers=auth(centre.tokens["operator"])).json()["devices"][0]["state"] == "offline"
    )
