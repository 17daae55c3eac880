"""The whole chain as real processes: mosquitto, a simulated box (`idstation run`), the central
listener (`idstation central listen --store`) and the service (`idstation central serve`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.agent.sim.broker import LocalBroker, free_port
from idstation.agent.sim.provision import provision_for_tests
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import open_store, sqlite_url

CLI = [sys.executable, "-m", "idstation.agent.cli"]


def idstation(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Chain:
    root: Path
    broker: LocalBroker
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key = X25519PrivateKey.generate()
        self.key_path = self.root / "central.key.pem"
        self.key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.registry = Registry(self.root / "registry", create=True)
        self.store_url = sqlite_url(self.root / "central.sqlite")
        open_store(self.store_url, migrate=True).close()
        self.clients = self.root / "clients.json"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def add_client(self, name: str, *who: str) -> str:
        done = idstation("central", "add-client", "--clients", str(self.clients), "--name", name, *who, "--json")
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["client"] == name
        self.tokens[name] = out["token"]
        return str(out["token"])

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as err:
            proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=err)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def start_centre(self) -> None:
        common = ["--registry", str(self.registry.path), "--key", str(self.key_path)]
        self.start("listener", "central", "listen", "--broker", self.broker.url, *common, "--store", self.store_url,
                   "--no-shared", "--protocol", "3.1.1")  # fmt: skip
        self.start("service", "central", "serve", "--store", self.store_url, *common,
                   "--listen", f"127.0.0.1:{self.port}", "--clients", str(self.clients))  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.procs["service"].poll() is None, self.log("service")
            time.sleep(0.2)
        raise AssertionError("the service did not answer /healthz within 60 s")

    def box(self, name: str, site: str, counter: str, cards: int, interval: float = 1.0) -> subprocess.Popen[bytes]:
        state = self.root / name
        provision_for_tests(state, site, counter, self.root / "ca", self.key.public_key(), self.broker.url,
                            registry=self.registry)  # fmt: skip
        config = self.root / f"{name}.toml"
        config.write_text(
            f'state_dir = "{state}"\ntrust_test_csca = true\ncsca_dir = "{self.root}"\n'
            '[reader]\nkind = "sim"\npoll_s = 0.1\n[camera]\nkind = "sim"\nqr_budget_s = 1.5\nqr_memory_s = 0\n'
            '[broker]\nprotocol = "3.1.1"\nkeepalive_s = 5\n[indicators]\nconsole = false\nreader = false\n'
            f"[simulation]\ncount = {cards}\ninterval_s = {interval}\nhold_s = 0.3\nstart_delay_s = 1\n"
            "[status]\ninterval_s = 1.0\n",
            encoding="utf-8",
        )
        return self.start(name, "run", "--config", str(config))

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def audit(self) -> list[dict[str, Any]]:
        done = idstation("central", "audit", "--store", self.store_url, "--json")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
