"""The clerk's page and the fleet page in headless Chromium, over a real store and service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from idstation.mqtt.central.store import sqlite_url
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.mqtt.central.service.centre import Centre, citizen

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT_S = 20  # generous: the pass/fail test asserts presence; timings belong to bench/service.py


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The pages are the same over either store: SQLite only here (the API tests cover both)."""
    return sqlite_url(tmp_path / "central.sqlite")


def sign_in(driver: Any, url: str, token: str) -> None:
    driver.get(url)
    field = WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "token-input"))
    field.send_keys(token, Keys.ENTER)  # keyboard only
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "live"
    )


def shown(driver: Any, field: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'[data-field="{field}"]').text


def test_a_placement_appears_on_its_counters_page_and_not_on_another(
    centre: Centre, serve: Callable[..., str], browser: Any, screenshot: Callable[[Any, str], Any]
) -> None:
    url = serve()
    box1, box2 = centre.box("box-1"), centre.box("box-2", counter="c02")
    sign_in(browser, url + "/counter/hn-01/c01", centre.tokens["c01"])
    page1 = browser.current_window_handle
    browser.switch_to.new_window("tab")
    sign_in(browser, url + "/counter/hn-01/c02", centre.tokens["c02"])
    page2 = browser.current_window_handle

    box1.identity()
    browser.switch_to.window(page1)
    WebDriverWait(browser, WAIT_S).until(lambda d: shown(d, "full_name") == "Nguyễn Thị Thuỳ Dương")
    assert shown(browser, "id_number") == "001090123456"
    assert shown(browser, "date_of_birth") == "01/01/1990"
    assert shown(browser, "permanent_address") == (
        "Số 7 ngõ 12 Phố Huế, Phường Phạm Đình Hổ, Quận Hai Bà Trưng, Hà Nội"
    )
    assert browser.find_element(By.ID, "badge").get_attribute("data-verdict") == "verified"
    assert browser.find_element(By.ID, "face").get_attribute("src").startswith("data:image/jpeg;base64,")
    screenshot(browser, "counter-c01")

    box2.identity(citizen(7))  # proves the other page is live, then check it never showed c01's citizen
    browser.switch_to.window(page2)
    WebDriverWait(browser, WAIT_S).until(lambda d: shown(d, "full_name") == "Trần Văn Số 7")
    assert "Nguyễn Thị Thuỳ Dương" not in browser.page_source
    screenshot(browser, "counter-c02")
    browser.switch_to.window(page1)
    assert shown(browser, "full_name") == "Nguyễn Thị Thuỳ Dương"


def test_copy_and_clear_buttons_work_by_keyboard_and_a_failed_read_empties_the_screen(
    centre: Centre, serve: Callable[..., str], browser: Any
) -> None:
    url = serve()
    box = centre.box("box-1")
    sign_in(browser, url + "/counter/hn-01/c01", centre.tokens["c01"])
    box.identity()
    WebDriverWait(browser, WAIT_S).until(lambda d: shown(d, "full_name") != "")
    copy = browser.find_element(By.CSS_SELECTOR, 'button[data-copy="id_number"]')
    copy.send_keys(Keys.ENTER)
    WebDriverWait(browser, WAIT_S).until(lambda d: copy.text == "Đã chép")
    browser.find_element(By.ID, "clear").send_keys(Keys.ENTER)
    assert browser.find_element(By.ID, "citizen").get_attribute("hidden") is not None
    assert shown(browser, "full_name") == ""
    box.identity(citizen(2))
    WebDriverWait(browser, WAIT_S).until(lambda d: shown(d, "full_name") == "Trần Văn Số 2")
    box.read_failed("card_removed")
    WebDriverWait(browser, WAIT_S).until(lambda d: shown(d, "full_name") == "")
    assert browser.find_element(By.ID, "notice").text.startswith("Không đọc được thẻ")


def test_the_page_clears_itself_after_the_freshness_window(
    centre: Centre, serve: Callable[..., str], browser: Any
) -> None:
    url = serve(freshness_s=8)  # long enough to be shown first on a busy machine
    box = centre.box("box-1")
    sign_in(browser, url + "/counter/hn-01/c01", centre.tokens["c01"])
    box.identity()
    WebDriverWait(browser, WAIT_S).until(lambda d: shown(d, "full_name") != "")
    WebDriverWait(browser, WAIT_S).until(lambda d: shown(d, "full_name") == "")


def test_the_badge_follows_the_centres_own_check_of_the_chip(
    centre: Centre, serve: Callable[..., str], browser: Any
) -> None:
    url = serve()
    box = centre.box("box-1")
    sign_in(browser, url + "/counter/hn-01/c01", centre.tokens["c01"])
    box.identity(centre={"passive": "verified", "data_match": True, "presence": "proven"})
    badge = browser.find_element(By.ID, "badge")
    WebDriverWait(browser, WAIT_S).until(lambda d: badge.text == "Chip đã xác thực · thẻ thật")
    box.identity(citizen(2), centre={"passive": "unknown_csca", "data_match": True, "presence": "not_checked"})
    WebDriverWait(browser, WAIT_S).until(lambda d: badge.get_attribute("data-verdict") == "unknown_issuer")


def test_a_wrong_token_is_refused_and_asked_again(centre: Centre, serve: Callable[..., str], browser: Any) -> None:
    url = serve()
    browser.get(url + "/counter/hn-01/c01")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "token-input")).send_keys(
        centre.tokens["c02"], Keys.ENTER
    )
    error = WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "signin-error"))
    WebDriverWait(browser, WAIT_S).until(lambda d: error.text != "")
    assert browser.execute_script("return localStorage.length") == 0


def test_the_fleet_page_shows_states_and_a_box_going_offline(
    centre: Centre, serve: Callable[..., str], browser: Any, screenshot: Callable[[Any, str], Any]
) -> None:
    url = serve()
    box = centre.box("box-1")
    centre.box("box-2", site="hcm-01", counter="c09").status("online")
    box.status("online", {"outbox": {"depth": 4}})
    box.identity()
    box.read_failed("card_removed")
    sign_in(browser, url + "/fleet", centre.tokens["operator"])

    def state(d: Any, device: str) -> str | None:
        rows = d.find_elements(By.CSS_SELECTOR, f'tr[data-device="{device}"]')
        return rows[0].get_attribute("data-state") if rows else None

    WebDriverWait(browser, WAIT_S).until(lambda d: state(d, "box-1") == "online")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-device="box-1"]')
    assert "card_removed: 1" in row.text and "4" in row.text
    assert row.find_elements(By.CSS_SELECTOR, "svg.chart")
    screenshot(browser, "fleet-online")
    box.status("offline", {"reason": "connection_lost"})
    WebDriverWait(browser, WAIT_S).until(lambda d: state(d, "box-1") == "offline")
    screenshot(browser, "fleet-offline")
    select = browser.find_element(By.ID, "site-filter")
    select.send_keys("hcm-01")
    WebDriverWait(browser, WAIT_S).until(lambda d: state(d, "box-1") is None and state(d, "box-2") == "online")
