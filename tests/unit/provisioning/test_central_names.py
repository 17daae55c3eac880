"""One name rule for device ids, sites and counters on the centre too (``pairing.valid_name``, 1-64).

The box refused a 65-character site or counter (``provision init``, ``config check``) while the centre's
registry, ``central enroll``/``revoke`` and ``central add-client`` took up to 128: such a counter could
never match an enrolled box. Driven through the real commands; the names that are no device, site or
counter (a listener's ``--group``, a service client's ``--name``) keep their own 1-128 rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.service.clients import ClientsFile
from idstation.mqtt.central.service.errors import ClientsError
from idstation.mqtt.enrolment.pairing import NAME_RULE, valid_name
from idstation.mqtt.errors import RegistryError

from .conftest import run_cli as _run

LONG = "s" * 65
MAX = "s" * 64
# Names on both sides of the rule: length, first character, characters outside the set.
NAMES = ["a", "hn-bd-001", MAX, LONG, "x" * 128, ".a", "-a", "_a", "a/b", "a b", "+", "#", "", "\u00e2", "x\n"]


def _idstation(*argv: str) -> subprocess.CompletedProcess[str]:
    argv_ = [sys.executable, "-m", "idstation.agent.cli", *argv]
    return subprocess.run(argv_, check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def csr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ("provision", "init", "--site", "hn", "--counter", "c01", "--state-dir", str(tmp_path / "box"), "--json")
    code, doc = _run(capsys, *argv)
    assert code == 0
    return str(doc["csr"])


@pytest.mark.parametrize("name", NAMES)
def test_the_registry_and_add_client_accept_exactly_the_enrolment_names(tmp_path: Path, name: str) -> None:
    expected = valid_name(name)
    registry = Registry(tmp_path / "reg", create=True)
    key = Ed25519PrivateKey.generate().public_key()
    for args in ((name, "s", "c"), ("d", name, "c"), ("d", "s", name)):
        try:
            registry.add_device(*args, key)
        except RegistryError as exc:
            assert not expected and NAME_RULE in str(exc)
        else:
            assert expected
    clients = ClientsFile(tmp_path / "clients.json")
    for n, binding in enumerate((f"{name}/c", f"s/{name}")):
        try:
            clients.add(f"client-{n}", [binding])
        except ClientsError as exc:
            assert not expected and NAME_RULE in str(exc)
        else:
            assert expected


def test_a_record_with_a_65_character_counter_is_skipped_as_the_box_could_never_match(tmp_path: Path) -> None:
    registry = Registry(tmp_path, create=True)
    registry.add_device("box-1", "s", MAX, Ed25519PrivateKey.generate().public_key())
    record = json.loads((tmp_path / "devices" / "box-1.json").read_text())
    record.update(device_id="box-2", counter=LONG)  # as an older registry tool could write it
    (tmp_path / "devices" / "box-2.json").write_text(json.dumps(record))
    assert [(r.device_id, r.counter) for r in Registry(tmp_path).devices()] == [("box-1", MAX)]


def test_add_client_refuses_a_65_character_counter_with_exit_2(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    proc = _idstation("central", "add-client", "--clients", str(clients), "--name", "desk", "--counter", f"hn/{LONG}")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and f"each {NAME_RULE}" in proc.stderr and "Traceback" not in proc.stderr
    argv = ("central", "add-client", "--clients", str(clients), "--name", "desk", "--counter", f"{LONG}/c1", "--json")
    doc = json.loads((proc := _idstation(*argv)).stdout)
    assert proc.returncode == 2 and doc["error"] == "bad_input" and doc["exit_code"] == 2
    assert NAME_RULE in doc["message"]
    assert not clients.exists()
    argv = ("central", "add-client", "--clients", str(clients), "--name", "desk", "--counter", f"{MAX}/{MAX}", "--json")
    assert _idstation(*argv).returncode == 0
    assert [c.counters for c in ClientsFile(clients).clients()] == [frozenset({(MAX, MAX)})]


def test_a_client_name_keeps_its_own_1_128_rule(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    assert (
        _idstation("central", "add-client", "--clients", str(clients), "--name", "n" * 128, "--operator").returncode
        == 0
    )
    proc = _idstation("central", "add-client", "--clients", str(clients), "--name", "n" * 129, "--operator")
    assert proc.returncode == 2 and "1-128" in proc.stderr


def test_a_clients_file_from_an_older_add_client_still_loads(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    ClientsFile(clients).add("desk", ["hn/c1"])
    doc = json.loads(clients.read_text())
    doc["clients"][0]["counters"].append(f"hn/{'c' * 100}")
    clients.write_text(json.dumps(doc))
    (client,) = ClientsFile(clients).clients()
    assert client.may_read("hn", "c1")


def test_central_enroll_refuses_a_65_character_site_or_counter_with_exit_2(
    tmp_path: Path, central_dir: Path, csr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("central", "enroll", "--dir", str(central_dir), "--csr", csr, "--bundle-out", str(tmp_path / "b.json"))
    for names in (("--site", LONG, "--counter", "c01"), ("--site", "hn", "--counter", LONG)):
        code, doc = _run(capsys, *base, *names, "--json")
        assert (code, doc["error"], doc["exit_code"]) == (2, "UsageError", 2)
        assert doc["message"] == f"{names[0] if names[1] == LONG else names[2]} must be {NAME_RULE}"
    assert not (tmp_path / "b.json").exists()
    assert Registry(central_dir / "registry").devices() == []
    code, doc = _run(capsys, *base, "--site", MAX, "--counter", MAX, "--json")
    assert code == 0 and (doc["site"], doc["counter"]) == (MAX, MAX)
    assert [(r.site, r.counter) for r in Registry(central_dir / "registry").devices()] == [(MAX, MAX)]


def test_central_revoke_refuses_a_65_character_device_id_with_exit_2(
    central_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _run(capsys, "central", "revoke", "d" * 65, "--dir", str(central_dir), "--json")
    assert (code, doc["error"], doc["message"]) == (2, "UsageError", f"the device id must be {NAME_RULE}")
    code, doc = _run(capsys, "central", "revoke", "d" * 64, "--dir", str(central_dir), "--json")
    assert code == 0 and doc["revoked"] is True


def test_central_listen_group_keeps_its_own_1_128_rule(tmp_path: Path) -> None:
    argv = ("central", "listen", "--broker", "mqtt://127.0.0.1:1", "--registry", str(tmp_path / "reg"))
    argv += ("--key", str(tmp_path / "missing.pem"), "--json")
    doc = json.loads(_idstation(*argv, "--group", "g" * 128).stdout)
    assert doc["error"] == "key_error"  # past the group check: it failed on the (missing) key
    doc = json.loads(_idstation(*argv, "--group", "g" * 129).stdout)
    assert (doc["exit_code"], doc["message"]) == (2, "--group is 1-128 of A-Z a-z 0-9 . _ -")
