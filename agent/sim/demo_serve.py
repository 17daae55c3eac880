"""``idstation demo --serve``: the whole chain with the HTTP service, until stopped.

A loopback broker, a throw-away fleet CA and central key, one simulated box at
``demo-site/counter-01`` placing the built-in test citizens one after another without end, the
central listener recording into an SQLite store, and the HTTP service over that store. It prints
the clerk page's and the fleet page's URLs, each with its token in the URL fragment (the page
keeps it in the browser and drops it from the address bar; fragments never reach the server),
then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import structlog
from idstation.agent.exitcodes import Exit

log = structlog.get_logger(__name__)

SITE, COUNTER = "demo-site", "counter-01"
ENDLESS = 100_000  # cards: "until stopped" for any visitor


def run_demo_serve(port: int = 8080, broker: str = "auto", interval_s: float = 4.0) -> int:
    from idstation.hal.errors import IdstationError

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="idstation-demo-") as tmp:
        try:
            return _serve(Path(tmp), port, broker, interval_s, stop)
        except IdstationError as exc:
            print(f"demo: {exc}", flush=True)
            return Exit.INTERNAL
        except KeyboardInterrupt:
            return Exit.OK
        finally:
            signal.signal(signal.SIGTERM, previous)


def _serve(tmp: Path, port: int, broker_impl: str, interval_s: float, stop: threading.Event) -> int:
    from idstation.agent.sim.broker import LocalBroker
    from idstation.agent.sim.demo import _provision
    from idstation.mqtt.central.receipts import load_receipt_signer
    from idstation.mqtt.central.service.app import build_app
    from idstation.mqtt.central.service.clients import ClientsFile
    from idstation.mqtt.central.service.server import BackgroundServer, start_listener
    from idstation.mqtt.central.store import open_store, sqlite_url

    broker = LocalBroker(tmp / "broker", implementation=broker_impl).start()
    protocol = "auto" if "5" in broker.protocols else "3.1.1"
    parts: list[Any] = []
    try:
        central_key, registry = _provision(tmp, broker.url)
        store = open_store(sqlite_url(tmp / "central.sqlite"), migrate=True)
        parts.append(store)
        signer = load_receipt_signer(tmp / "receipt_key.pem")  # the box trusts it: receipts free its outbox
        parts.append(start_listener(broker.url, registry, central_key, store, receipt_signer=signer))
        clients = ClientsFile(tmp / "clients.json")
        clerk = clients.add("demo-clerk", [f"{SITE}/{COUNTER}"])
        operator = clients.add("demo-operator", operator=True)
        server = BackgroundServer(build_app(store, registry, central_key, clients), "127.0.0.1", port).start()
        parts.append(server)
        _announce(server.url, clerk, operator)
        parts.append(_start_box(tmp, broker.url, protocol, interval_s))
        while not stop.wait(0.5):
            pass
    finally:
        for part in reversed(parts):
            (part.close if hasattr(part, "record") else part.stop)()
        broker.stop()
    return Exit.OK


def _announce(url: str, clerk: str, operator: str) -> None:
    print(f"clerk page:  {url}/counter/{SITE}/{COUNTER}#token={clerk}", flush=True)
    print(f"fleet page:  {url}/fleet#token={operator}", flush=True)
    print(f"clerk token: {clerk}", flush=True)
    print(f"operator token: {operator}", flush=True)
    print("the simulated box places a card every few seconds; Ctrl-C stops the demo", flush=True)


def _start_box(tmp: Path, url: str, protocol: str, interval_s: float) -> Any:
    """The simulated box on a thread, placing cards without end (a card lies 1.5 s on the reader)."""
    from idstation.agent.config import demo_config
    from idstation.agent.daemon import Daemon
    from idstation.agent.sdnotify import Notifier
    from idstation.agent.sim.demo import _AgentRun
    from idstation.agent.wiring import build_agent
    from idstation.provisioning.identity import load_identity

    cfg = demo_config(tmp / "box", url, protocol, count=ENDLESS, interval_s=interval_s, hold_s=1.5, start_delay_s=1)
    built = build_agent(cfg, identity=load_identity(cfg.state_dir))
    daemon = Daemon(built.agent, Notifier(environ={}), built.on_stop, built.on_ready)
    thread = threading.Thread(target=daemon.run, name="agent", daemon=True)
    thread.start()
    return _AgentRun(daemon, thread)
