"""The centre's dedupe state lives somewhere a reboot keeps, and says so loudly when it does not."""

from __future__ import annotations

from pathlib import Path

from idstation.mqtt.central.dedupe import DedupeStore, default_state_path, is_volatile
from structlog.testing import capture_logs


def test_the_default_state_is_not_in_the_temporary_directory(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("IDSTATION_CENTRAL_STATE_DIR", raising=False)
    path = default_state_path("g1")
    assert path.name == "g1.sqlite"
    assert not is_volatile(path)


def test_the_state_directory_can_be_chosen_by_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("IDSTATION_CENTRAL_STATE_DIR", str(tmp_path / "state"))
    assert default_state_path("g1") == tmp_path / "state" / "g1.sqlite"


def test_a_state_file_in_tmp_is_announced_as_not_persistent(tmp_path: Path) -> None:
    with capture_logs() as logs:
        DedupeStore(tmp_path / "state.sqlite").close()
    assert any(entry["event"] == "central_state_not_persistent" for entry in logs)
