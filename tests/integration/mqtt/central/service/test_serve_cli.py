"""`idstation central serve` as a process: HTTPS, clients added and removed while it runs, bad flags."""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from idstation.agent.sim.broker import free_port
from idstation.agent.sim.devpki import make_dev_pki

from tests.integration.mqtt.central.service.centre import Centre, auth
from tests.integration.mqtt.central.service.chain import CLI, Chain, idstation

pytestmark = pytest.mark.integration


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    from idstation.mqtt.central.store import sqlite_url

    return sqlite_url(tmp_path / "central.sqlite")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], verify: ssl.SSLContext | bool = True) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service exited"
        try:
            if httpx.get(url + "/healthz", verify=verify, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("no answer within 60 s")


def test_serve_over_https_applies_client_changes_without_a_restart(centre: Centre, tmp_path: Path) -> None:
    pki = make_dev_pki(tmp_path / "pki")
    ca = ssl.create_default_context(cafile=pki.ca_file)
    port = free_port()
    argv = [*CLI, "central", "serve", "--store", centre.store_url, "--registry", str(centre.registry_dir),
            "--key", str(centre.key_path), "--listen", f"127.0.0.1:{port}", "--clients", str(centre.clients_path),
            "--tls-cert", pki.server_cert, "--tls-key", pki.server_key]  # fmt: skip
    with (tmp_path / "serve.log").open("wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    url = f"https://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, verify=ca)
        centre.box("box-1").identity()
        fleet = httpx.get(url + "/v1/fleet", headers=auth(centre.tokens["operator"]), verify=ca)
        assert fleet.status_code == 200
        added = idstation("central", "add-client", "--clients", str(centre.clients_path), "--name", "late",
                          "--counter", "hn-01/c01", "--json")  # fmt: skip
        token = httpx.Response(200, content=added.stdout).json()["token"]
        latest = url + "/v1/counters/hn-01/c01/identities/latest"
        assert httpx.get(latest, headers=auth(token), verify=ca).status_code == 200
        removed = idstation("central", "remove-client", "--clients", str(centre.clients_path), "--name", "late")
        assert removed.returncode == 0
        assert httpx.get(latest, headers=auth(token), verify=ca).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    audit = idstation("central", "audit", "--store", centre.store_url, "--json")
    assert audit.returncode == 0 and audit.stdout.count('"client": "late"') == 1


@pytest.mark.parametrize(
    "extra",
    [
        ["--listen", "127.0.0.1"],
        ["--listen", "127.0.0.1:0x50"],
        ["--listen", "127.0.0.1:8443", "--tls-cert", "x.pem"],
        ["--listen", "127.0.0.1:8443", "--with-listener"],
        ["--listen", "127.0.0.1:8443", "--freshness", "0"],
    ],
)
def test_serve_refuses_bad_flags_with_exit_2(centre: Centre, extra: list[str]) -> None:
    done = idstation("central", "serve", "--store", centre.store_url, "--registry", str(centre.registry_dir),
                     "--key", str(centre.key_path), "--clients", str(centre.clients_path), *extra)  # fmt: skip
    assert done.returncode == 2, done.stderr


def test_audit_since_filters_and_refuses_a_bad_time(centre: Centre) -> None:
    centre.store.add_audit("clerk-c01", "e-old", "/v1/x", 1000.0)
    centre.store.add_audit("clerk-c01", "e-new", "/v1/x", 2_000_000_000.0)
    done = idstation("central", "audit", "--store", centre.store_url, "--since", "2030-01-01T00:00:00Z", "--json")
    assert done.returncode == 0
    assert [line for line in done.stdout.splitlines() if line] == [
        '{"time": "2033-05-18T03:33:20.000Z", "at": "2033-05-18T03:33:20.000Z", "client": "clerk-c01", '
        '"event_id": "e-new", "endpoint": "/v1/x"}'
    ]
    assert idstation("central", "audit", "--store", centre.store_url, "--since", "yesterday").returncode == 2


@pytest.mark.slow
def test_serve_with_listener_records_and_serves_a_placement(tmp_path: Path, broker_factory: Any) -> None:
    chain = Chain(tmp_path, broker_factory())
    token = chain.add_client("clerk", "--counter", "hn-05/c05")
    chain.start("service", "central", "serve", "--store", chain.store_url, "--registry", str(chain.registry.path),
                "--key", str(chain.key_path), "--listen", f"127.0.0.1:{chain.port}", "--clients", str(chain.clients),
                "--with-listener", "--broker", chain.broker.url)  # fmt: skip
    try:
        wait_healthy(chain.url, chain.procs["service"])
        chain.box("box-5", "hn-05", "c05", cards=2)
        latest = chain.url + "/v1/counters/hn-05/c05/identities/latest"
        deadline = time.monotonic() + 120
        while (code := httpx.get(latest, headers=auth(token)).status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert code == 200
    finally:
        chain.stop_all()
    assert chain.procs["service"].returncode == 0
