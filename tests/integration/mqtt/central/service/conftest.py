"""Fixtures: a centre (real SQLite store) and the service on a real uvicorn server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from idstation.mqtt.central.service.app import build_app
from idstation.mqtt.central.service.server import BackgroundServer

from tests.integration.mqtt.central.service.centre import Centre


@pytest.fixture
def centre(tmp_path: Path, store_url: str) -> Iterator[Centre]:
    """Over each store backend (``store_url`` is parametrised: SQLite and PostgreSQL)."""
    c = Centre(tmp_path, store_url)
    yield c
    c.store.close()


@pytest.fixture
def serve(centre: Centre) -> Iterator[Callable[..., str]]:
    """``serve(**settings)`` starts the app over ``centre`` and returns its base URL."""
    servers: list[BackgroundServer] = []

    def start(**settings: Any) -> str:
        settings.setdefault("keepalive_s", 0.5)
        app = build_app(centre.store, centre.registry, centre.key, centre.clients, **settings)
        server = BackgroundServer(app).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


ARTIFACTS = Path(__file__).resolve().parents[4] / "artifacts"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium driven by the system chromedriver (no downloads), quit at teardown."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``screenshot(driver, label)``: a PNG under tests/artifacts/ (ignored by git), named by the test."""

    def take(driver: Any, label: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / ".gitignore").write_text("*\n")
        path = ARTIFACTS / f"{request.node.name}-{label}.png"
        driver.save_screenshot(str(path))
        return path

    return take
