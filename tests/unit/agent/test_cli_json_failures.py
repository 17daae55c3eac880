"""Every ``--json`` command prints one JSON object with "error" (and the README's exit code) on failure.

Driven as a user runs the command: the ``idstation`` entry point in a subprocess (``python -m
idstation.agent.cli`` is the same ``main``). Issue 10/11: "commands with --json print a JSON object
with "error" even on failure"; exit codes per README.md's table.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _idstation(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    argv_ = [sys.executable, "-m", "idstation.agent.cli", *argv]
    return subprocess.run(argv_, check=False, capture_output=True, text=True, timeout=timeout)


def _error_object(proc: subprocess.CompletedProcess[str], code: int, kind: str) -> dict:
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["error"] == kind
    assert doc["exit_code"] == code
    assert "Traceback" not in proc.stderr
    return doc


def test_a_usage_error_of_a_json_command_line_prints_the_error_object() -> None:
    proc = _idstation("central", "add-client", "--clients", "/nonexistent/c.json", "--name", "x", "--json")
    doc = _error_object(proc, 2, "bad_input")
    assert "--counter" in doc["message"]


def test_a_bad_option_value_with_json_prints_the_error_object() -> None:
    proc = _idstation("central", "export", "--store", "sqlite:////nonexistent/x", "--after", "abc", "--json")
    _error_object(proc, 2, "bad_input")


def test_without_json_a_usage_error_prints_nothing_on_stdout() -> None:
    proc = _idstation("central", "export", "--store", "sqlite:////nonexistent/x", "--after", "abc")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "invalid int value" in proc.stderr


def test_camera_test_with_an_unknown_source_is_bad_input_in_json() -> None:
    _error_object(_idstation("camera-test", "--source", "bogus", "--json"), 2, "bad_input")


def test_status_with_a_missing_configuration_is_exit_8_in_json(tmp_path: Path) -> None:
    _error_object(_idstation("status", "--config", str(tmp_path / "none.toml"), "--json"), 8, "config_error")


def test_demo_with_taps_out_of_range_is_bad_input_in_json() -> None:
    _error_object(_idstation("demo", "--taps", "0", "--json"), 2, "bad_input")


def test_config_check_names_the_wrong_key_and_carries_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[reader]\nkind = "sim"\nbogus = 1\n', encoding="utf-8")
    doc = _error_object(_idstation("config", "check", "--config", str(config), "--json"), 8, "config_error")
    assert doc["ok"] is False
    assert [p["key"] for p in doc["problems"]] == ["reader.bogus"]


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("central")
    proc = _idstation("central", "init-ca", "--dir", str(root / "c"), "--registry", str(root / "registry"), "--json")
    assert proc.returncode == 0, proc.stderr
    return root


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_central_listen_with_an_unreachable_broker_is_exit_9_in_json(central: Path) -> None:
    proc = _idstation(
        "central", "listen", "--broker", f"mqtt://127.0.0.1:{_closed_port()}", "--registry", str(central / "registry"),
        "--key", str(central / "c" / "central_key.pem"), "--state", str(central / "state.sqlite"),
        "--connect-timeout", "1", "--json",
    )  # fmt: skip
    _error_object(proc, 9, "broker_error")


def test_central_listen_with_a_receipt_key_that_does_not_load_is_exit_8_in_json(central: Path) -> None:
    proc = _idstation(
        "central", "listen", "--broker", f"mqtt://127.0.0.1:{_closed_port()}", "--registry", str(central / "registry"),
        "--key", str(central / "c" / "central_key.pem"), "--receipt-key", str(central / "missing.pem"),
        "--state", str(central / "state.sqlite"), "--connect-timeout", "1", "--json",
    )  # fmt: skip
    _error_object(proc, 8, "key_error")


def test_central_listen_with_a_bad_broker_url_is_bad_input_in_json(central: Path) -> None:
    proc = _idstation(
        "central", "listen", "--broker", "ftp://x", "--registry", str(central / "registry"),
        "--key", str(central / "c" / "central_key.pem"), "--json",
    )  # fmt: skip
    _error_object(proc, 2, "bad_input")
