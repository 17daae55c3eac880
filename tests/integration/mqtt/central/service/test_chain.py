"""End to end on real processes: simulated box -> mosquitto -> listener -> store -> service -> clients."""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from idstation.agent.sim.broker import LocalBroker
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.mqtt.central.service.centre import auth, read_sse
from tests.integration.mqtt.central.service.chain import Chain

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT_S = 60  # generous: presence is asserted here, timings go to bench/service.py


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """One centre (broker, listener, service) for the module; each test places cards on its own counter."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    root = tmp_path_factory.mktemp("chain")
    broker = LocalBroker(root / "broker", implementation="mosquitto").start()
    c = Chain(root, broker)
    try:
        for n in (1, 2, 3):
            c.add_client(f"clerk-c0{n}", "--counter", f"hn-01/c0{n}")
        c.add_client("ops", "--operator")
        c.start_centre()
        yield c
    finally:
        c.stop_all()
        broker.kill()


def personal_values(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for event in events:
        citizen = event["json"]["citizen"]
        out += [citizen["full_name"], citizen["id_number"], citizen["permanent_address"]]
    return out


def test_a_placement_reaches_the_counters_stream_and_is_audited_without_personal_data(chain: Chain) -> None:
    headers = auth(chain.tokens["clerk-c01"])
    with httpx.stream("GET", chain.url + "/v1/counters/hn-01/c01/stream", headers=headers, timeout=WAIT_S) as response:
        chain.box("box-1", "hn-01", "c01", cards=2)
        events: list[dict[str, Any]] = []
        while len([e for e in events if e["event"] == "identity"]) < 2:  # a read may fail on a loaded machine
            events += read_sse(response, 1, timeout=WAIT_S * 2)
            assert len(events) <= 6
    identities = [e for e in events if e["event"] == "identity"]
    assert all(e["json"]["kind"] == "identity" and e["json"]["citizen"]["full_name"] for e in identities)
    assert all(e["json"]["site"] == "hn-01" and e["json"]["counter_id"] == "c01" for e in events)
    audit = [a for a in chain.audit() if a["client"] == "clerk-c01"]
    assert [a["event_id"] for a in audit] == [e["json"]["event_id"] for e in identities]
    secrets_ = personal_values(identities)
    for text in (json.dumps(chain.audit(), ensure_ascii=False), chain.log("service"), chain.log("listener")):
        assert not [s for s in secrets_ if s in text]


def test_a_counter_token_never_reads_another_counter_on_the_live_chain(chain: Chain) -> None:
    url = chain.url + "/v1/counters/hn-01/c01/identities/latest"
    assert httpx.get(url, headers=auth(chain.tokens["clerk-c02"])).status_code == 403
    assert httpx.get(url, headers=auth(chain.tokens["ops"])).status_code == 403
    assert httpx.get(url).status_code == 401
    assert not [a for a in chain.audit() if a["client"] != "clerk-c01"]


def test_the_clerk_page_shows_a_placement_on_its_counter_only(
    chain: Chain, browser: Any, screenshot: Callable[[Any, str], Any]
) -> None:
    browser.get(f"{chain.url}/counter/hn-01/c03#token={chain.tokens['clerk-c03']}")
    mine = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(f"{chain.url}/counter/hn-01/c02#token={chain.tokens['clerk-c02']}")
    other = browser.current_window_handle
    for handle in (mine, other):
        browser.switch_to.window(handle)
        WebDriverWait(browser, WAIT_S).until(
            lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "live"
        )
    chain.box("box-3", "hn-01", "c03", cards=2)  # a second card in case a read fails on a loaded machine
    browser.switch_to.window(mine)
    name = '[data-field="full_name"]'

    def citizen_shown(d: Any) -> tuple[str, str] | bool:
        text = d.find_element(By.CSS_SELECTOR, name).text
        return bool(text) and (text, d.find_element(By.ID, "badge").get_attribute("data-verdict"))

    shown, verdict = WebDriverWait(browser, WAIT_S).until(citizen_shown)
    assert verdict in ("verified", "unknown_issuer", "qr_only")  # "verified" unless the machine is very busy
    if verdict != "qr_only":  # read from the chip: the face photo came with it
        assert (browser.find_element(By.ID, "face").get_attribute("src") or "").startswith("data:image/jpeg;base64,")
    screenshot(browser, "clerk-c03")
    browser.switch_to.window(other)
    assert browser.find_element(By.CSS_SELECTOR, name).text == ""
    assert shown not in browser.page_source
    screenshot(browser, "clerk-c02")


def test_the_fleet_page_shows_a_box_going_offline_when_it_is_killed(
    chain: Chain, browser: Any, screenshot: Callable[[Any, str], Any]
) -> None:
    box = chain.box("box-9", "hn-09", "c09", cards=1000, interval=2.0)
    device = chain.registry.devices()
    (device_id,) = [d.device_id for d in device if d.site == "hn-09"]
    browser.get(f"{chain.url}/fleet#token={chain.tokens['ops']}")

    def state(d: Any) -> str | None:
        rows = d.find_elements(By.CSS_SELECTOR, f'tr[data-device="{device_id}"]')
        return rows[0].get_attribute("data-state") if rows else None

    def wait_for(wanted: str) -> None:
        try:
            WebDriverWait(browser, WAIT_S).until(lambda d: state(d) == wanted)
        except TimeoutException:
            fleet = httpx.get(chain.url + "/v1/fleet", headers=auth(chain.tokens["ops"])).json()
            logs = f"listener: {chain.log('listener')[-2000:]}\nbox: {chain.log('box-9')[-2000:]}"
            raise AssertionError(f"not {wanted}: {fleet}\n{logs}") from None
        screenshot(browser, f"fleet-{wanted}")

    wait_for("online")
    box.send_signal(signal.SIGKILL)
    box.wait(timeout=30)
    wait_for("offline")
