"""The command-line contracts: config check, status."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from idstation.agent.cli import main
from idstation.agent.status import read_status, render_status, write_status_file


def test_config_check_ok_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[reader]\nkind = "sim"\n', encoding="utf-8")
    assert main(["config", "check", "--config", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ok:")


def test_config_check_names_each_wrong_key_and_exits_8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[reader]\nkind = "usb"\ncolour = "red"\n', encoding="utf-8")
    assert main(["config", "check", "--config", str(path), "--json"]) == 8
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert {p["key"] for p in doc["problems"]} == {"reader.kind", "reader.colour"}


def test_status_without_a_daemon_says_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSTATION_STATE_DIR", str(tmp_path))
    assert main(["status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["state"] == "not_running"


def test_a_fresh_status_file_is_running_and_an_old_one_is_stale(tmp_path: Path) -> None:
    write_status_file(tmp_path, {"state": "online", "reader": "ok", "camera": "ok", "outbox": {"depth": 2}})
    assert read_status(tmp_path, 30)["running"] is True
    old = read_status(tmp_path, 30, now=time.time() + 1000)
    assert (old["running"], old["state"]) == (False, "stale")
    assert "outbox depth: 2" in render_status(read_status(tmp_path, 30))
