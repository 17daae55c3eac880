"""The clients file: tokens shown once, only hashes stored, roles and counters enforced."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from idstation.mqtt.central.service.clients import ClientsFile
from idstation.mqtt.central.service.errors import ClientsError


def test_a_new_token_authenticates_its_client_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    clients = ClientsFile(tmp_path / "clients.json")
    token = clients.add("clerk-1", ["hn-01/c01", "hn-01/c02"])
    text = (tmp_path / "clients.json").read_text()
    assert token not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    client = clients.authenticate(token)
    assert client is not None and client.name == "clerk-1"
    assert client.may_read("hn-01", "c01") and client.may_read("hn-01", "c02")
    assert not client.may_read("hn-01", "c03")


def test_tokens_are_256_bit_random_and_unknown_tokens_fail(tmp_path: Path) -> None:
    clients = ClientsFile(tmp_path / "clients.json")
    a, b = clients.add("a", ["s/c"]), clients.add("b", ["s/c"])
    assert a != b and len(a) >= 43
    assert clients.authenticate(a[:-1] + ("x" if a[-1] != "x" else "y")) is None
    assert clients.authenticate("") is None and clients.authenticate(None) is None


def test_the_clients_file_is_private_to_its_owner(tmp_path: Path) -> None:
    clients = ClientsFile(tmp_path / "clients.json")
    clients.add("op", operator=True)
    assert stat.S_IMODE((tmp_path / "clients.json").stat().st_mode) == 0o600


def test_an_operator_reads_no_counter(tmp_path: Path) -> None:
    clients = ClientsFile(tmp_path / "clients.json")
    op = clients.authenticate(clients.add("op", operator=True))
    assert op is not None and op.is_operator and not op.may_read("s", "c")


def test_a_removed_client_no_longer_authenticates_in_a_running_reader(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    service_view = ClientsFile(path)
    token = ClientsFile(path).add("clerk", ["s/c"])
    assert service_view.authenticate(token) is not None
    assert ClientsFile(path).remove("clerk") is True
    assert service_view.authenticate(token) is None
    assert ClientsFile(path).remove("clerk") is False


@pytest.mark.parametrize(
    ("name", "counters", "operator"),
    [
        ("bad name", ["s/c"], False),
        ("c", [], False),
        ("c", ["s/c"], True),
        ("c", ["no-slash"], False),
        ("c", ["s/c/x"], False),
    ],
)
def test_invalid_clients_are_refused(tmp_path: Path, name: str, counters: list[str], operator: bool) -> None:
    with pytest.raises(ClientsError):
        ClientsFile(tmp_path / "clients.json").add(name, counters, operator=operator)


def test_a_client_name_is_unique(tmp_path: Path) -> None:
    clients = ClientsFile(tmp_path / "clients.json")
    clients.add("c", ["s/c"])
    with pytest.raises(ClientsError, match="already exists"):
        clients.add("c", ["s/d"])


def test_a_malformed_clients_file_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [{"name": "x", "role": "king", "token_sha256": "0" * 64}]}))
    with pytest.raises(ClientsError):
        ClientsFile(path).authenticate("anything")
    path.write_text("{not json")
    with pytest.raises(ClientsError):
        ClientsFile(path).authenticate("anything")
