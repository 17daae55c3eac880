"""Configuration: TOML plus environment overrides, every wrong key named with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from idstation.agent import config
from idstation.agent.config import ConfigInvalid, load_config
from idstation.agent.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "idstation.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_without_a_file() -> None:
    cfg = load_config(None, environ={})
    assert cfg.reader.kind == "pcsc"
    assert cfg.outbox_path == Path("/var/lib/idstation/outbox.sqlite")


def test_the_toml_file_sets_values(tmp_path: Path) -> None:
    path = write(tmp_path, '[reader]\nkind = "sim"\n[broker]\nurl = "mqtts://broker:8883"\nprotocol = "3.1.1"\n')
    cfg = load_config(path, environ={})
    assert (cfg.reader.kind, cfg.broker.url, cfg.broker.protocol) == ("sim", "mqtts://broker:8883", "3.1.1")


def test_environment_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[reader]\nkind = "pcsc"\n')
    env = {"IDSTATION_READER__KIND": "sim", "IDSTATION_SIMULATION__COUNT": "7", "IDSTATION_STATE_DIR": "/tmp/x"}
    cfg = load_config(path, environ=env)
    assert (cfg.reader.kind, cfg.simulation.count, cfg.state_dir) == ("sim", 7, Path("/tmp/x"))


def test_unrelated_idstation_variables_are_ignored() -> None:
    cfg = load_config(None, environ={"IDSTATION_LOG_LEVEL": "debug", "IDSTATION_HIL_READER": "ACS"})
    assert cfg.reader.kind == "pcsc"


def test_idstation_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[simulation]\ncount = 3\n")
    assert load_config(None, environ={"IDSTATION_CONFIG": str(path)}).simulation.count == 3


def test_every_wrong_key_is_named_with_its_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[reader]\nkind = "usb"\n[camera]\nqr_budget_s = -1\nresolution = [10, 10]\n'
        '[broker]\nurl = "http://x"\nprotcol = "5"\n[nonsense]\na = 1\n',
    )
    problems = {p.key: p.reason for p in config.check(path, environ={})}
    assert set(problems) == {
        "reader.kind",
        "camera.qr_budget_s",
        "camera.resolution",
        "broker.url",
        "broker.protcol",
        "nonsense",
    }
    assert problems["broker.protcol"] == "unknown key"
    assert "pcsc" in problems["reader.kind"]
    assert "greater than 0" in problems["camera.qr_budget_s"]


def test_a_wrong_environment_value_names_its_variable() -> None:
    problems = config.check(None, environ={"IDSTATION_BROKER__PROTOCOL": "4"})
    assert [(p.key, p.source) for p in problems] == [("broker.protocol", "env IDSTATION_BROKER__PROTOCOL")]


def test_a_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[reader\nkind=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={})


def test_the_shipped_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[3] / "firmware_cfg" / "idstation.toml"
    assert config.check(example, environ={}) == []


def test_the_demo_configuration_uses_simulated_hardware(tmp_path: Path) -> None:
    cfg = config.demo_config(tmp_path, "mqtt://127.0.0.1:1883", count=3)
    assert (cfg.reader.kind, cfg.camera.kind, cfg.simulation.count) == ("sim", "sim", 3)
