"""Placement-to-screen latency through the whole chain, with the centre's HTTP service (issue 14).

A simulated box (``idstation run`` as its own process, sim reader and camera) places cards; each
travels box -> mosquitto -> central listener -> store (SQLite) -> HTTP service -> the counter's
server-sent-events stream, and (``--browser``) onto the clerk's page in headless Chromium. The
placement time is the box's own ``sim_card_placed`` log line; the arrival is taken when the SSE
client receives the event and when the page has drawn it (the page's ``idstation:shown`` event).
One machine, one clock. Reports median and p95 for placement -> SSE, placement -> screen and
(created_at ->) centre -> SSE, i.e. without the box's QR decode and chip read. Goal: p95 < 1 s.

usage: python bench/service.py [--cards 20] [--interval 1.0] [--browser] [--no-face] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.agent.sim.broker import LocalBroker
from idstation.agent.sim.provision import provision_for_tests
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.service.app import build_app
from idstation.mqtt.central.service.clients import ClientsFile
from idstation.mqtt.central.service.server import BackgroundServer, start_listener
from idstation.mqtt.central.store import open_store, sqlite_url

SITE, COUNTER = "bench", "c01"


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def box_config(tmp: Path, state: Path, cards: int, interval: float, face: bool = True) -> Path:
    config = tmp / "box.toml"
    config.write_text(
        f'state_dir = "{state}"\ntrust_test_csca = true\ncsca_dir = "{tmp}"\n'
        f'[reader]\nkind = "sim"\npoll_s = 0.05\nface = {str(face).lower()}\n'
        '[camera]\nkind = "sim"\nqr_budget_s = 1.5\nqr_memory_s = 0\n'
        '[broker]\nprotocol = "3.1.1"\nkeepalive_s = 5\n[indicators]\nconsole = false\nreader = false\n'
        f"[simulation]\ncount = {cards}\ninterval_s = {interval}\nhold_s = 0.3\nstart_delay_s = 2\n"
        "[status]\ninterval_s = 5.0\n",
        encoding="utf-8",
    )
    return config


def placements(log: Path) -> list[float]:
    """The box's placement times, in order, from its JSON log lines."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "sim_card_placed":
            out.append(epoch(rec["timestamp"]))
    return out


class SseClient(threading.Thread):
    """Reads the counter's stream; notes (event_id, created_at, received_at centre, arrival)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True, name="sse-client")
        self.url, self.token = url, token
        self.arrivals: list[tuple[str, float, float, float]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.stream("GET", self.url, headers=headers, timeout=None) as response:
            for line in response.iter_lines():
                self.ready.set()
                if self.stop.is_set():
                    return
                if line.startswith("data:"):
                    obj = json.loads(line[5:])
                    if obj.get("kind") == "identity":
                        now = time.time()
                        self.arrivals.append(
                            (obj["event_id"], epoch(obj["created_at"]), epoch(obj["received_at"]), now)
                        )


def browser_page(url: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="idstation-bench-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.get(url)
    driver.execute_script(
        "window.__shown = [];"
        "document.addEventListener('idstation:shown', e => window.__shown.push([e.detail, Date.now() / 1000]));"
    )
    return driver


def stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(values), "median_ms": round(statistics.median(values) * 1000, 1), "p95_ms": round(p95 * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}  # fmt: skip


def run(cards: int, interval: float, use_browser: bool, face: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="idstation-bench-service-") as name:
        tmp = Path(name)
        broker = LocalBroker(tmp / "broker", implementation="mosquitto").start()
        key = X25519PrivateKey.generate()
        registry = Registry(tmp / "registry", create=True)
        provision_for_tests(tmp / "box", SITE, COUNTER, tmp / "ca", key.public_key(), broker.url, registry=registry)
        store = open_store(sqlite_url(tmp / "central.sqlite"), migrate=True)
        listener = start_listener(broker.url, registry, key, store)
        clients = ClientsFile(tmp / "clients.json")
        token = clients.add("bench-clerk", [f"{SITE}/{COUNTER}"])
        server = BackgroundServer(build_app(store, registry, key, clients)).start()
        page = f"{server.url}/counter/{SITE}/{COUNTER}#token={token}"
        driver = browser_page(page) if use_browser else None
        sse = SseClient(f"{server.url}/v1/counters/{SITE}/{COUNTER}/stream", token)
        sse.start()
        sse.ready.wait(10)
        log = tmp / "box.log"
        box = None
        try:
            with log.open("wb") as err:
                argv = [
                    shutil.which("idstation") or "idstation",
                    "run",
                    "--config",
                    str(box_config(tmp, tmp / "box", cards, interval)),
                ]
                box = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 30 + cards * (interval + 3)
            while len(sse.arrivals) < cards and time.monotonic() < deadline and box.poll() is None:
                time.sleep(0.2)
            time.sleep(1.0)
            shown = dict(driver.execute_script("return window.__shown")) if driver else {}
        finally:
            if box is not None and box.poll() is None:
                box.terminate()
                box.wait(30)
            sse.stop.set()
            if driver is not None:
                driver.quit()
            server.stop()
            listener.stop()
            store.close()
            broker.stop()
        placed = placements(log)
        arrivals = sse.arrivals
        pairs = list(zip(placed, arrivals, strict=False))
        return {
            "cards": cards,
            "identities_received": len(arrivals),
            "placement_to_sse": stats([a[3] - p for p, a in pairs]),
            "placement_to_screen": stats([shown[a[0]] - p for p, a in pairs if a[0] in shown]) if use_browser else None,
            "created_to_sse": stats([a[3] - a[1] for a in arrivals]),
            "centre_received_to_sse": stats([a[3] - a[2] for a in arrivals]),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a card's removal and the next")
    parser.add_argument("--browser", action="store_true", help="also time the clerk's page in headless Chromium")
    parser.add_argument("--no-face", action="store_true", help="the box does not read the face (DG2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.cards, args.interval, args.browser, face=not args.no_face)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"cards placed: {result['cards']}, identities on the stream: {result['identities_received']}")
    for label in ("placement_to_sse", "placement_to_screen", "created_to_sse", "centre_received_to_sse"):
        if result[label]:
            print(f"{label:24s} {result[label]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
