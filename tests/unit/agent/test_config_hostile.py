"""Wrong, hostile or contradictory configuration: `config check` names the key and why, `run` exits 8.

Driven through the installed ``idstation`` command, with the environment a service would give it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from idstation.agent.config import Config, ConfigInvalid, load_config
from idstation.mqtt.enrolment.pairing import valid_name
from pydantic import ValidationError

IDSTATION = shutil.which("idstation") or "idstation"


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IDSTATION_")}
    return subprocess.run(
        [IDSTATION, *args], env=clean | (env or {}), capture_output=True, text=True, timeout=timeout, check=False
    )


def _problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    path = tmp_path / "idstation.toml"
    path.write_text(text, encoding="utf-8")
    done = _run(["config", "check", "--config", str(path), "--json"], env)
    assert done.returncode == 8, done.stderr
    assert "Traceback" not in done.stderr
    return {p["key"]: p["reason"] for p in json.loads(done.stdout)["problems"]}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('site = "a/#"\n', "site"),
        ('counter = "c\\n1"\n', "counter"),
        ('site = "+"\n', "site"),
        ('[broker]\nurl = "mqtt://"\n', "broker.url"),
        ('[broker]\nurl = "mqtts://host:notaport"\n', "broker.url"),
        ('[broker]\nurl = "mqtts://host:0"\n', "broker.url"),
        ('[broker]\nurl = "mqtts://host:70000"\n', "broker.url"),
        ('[broker]\nurl = "http://host:8883"\n', "broker.url"),
        ('[broker]\nurl = "mqtts://user:pw@host:8883"\n', "broker.url"),
        ('[simulation]\nscenario = [[[["x"]]]]\n', "simulation.scenario"),
        ('state_dir = "/tmp/a\\u0000b"\n', "state_dir"),
    ],
)
def test_config_check_names_the_wrong_key(tmp_path: Path, text: str, key: str) -> None:
    problems = _problems(tmp_path, text)
    assert key in problems
    assert problems[key]


def test_deeply_nested_toml_is_a_config_error_not_a_traceback(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert "nested too deeply" in problems["(file)"]


def test_a_value_and_a_section_from_the_environment_contradict(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "", {"IDSTATION_READER": "1", "IDSTATION_READER__KIND": "sim"})
    assert "IDSTATION_READER" in problems["reader.kind"]


def test_a_nested_environment_value_is_a_config_error(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "", {"IDSTATION_BROKER__URL": "{a={b={c={d=1}}}}"})
    assert "nested too deeply" in problems["broker.url"]
    problems = _problems(tmp_path, "", {"IDSTATION_READER__KIND": "sim", "IDSTATION_READER__KIND__X": "1"})
    assert "reader.kind.x" in problems


@pytest.mark.parametrize("site", ["a/#", "s" * 65])
def test_run_with_a_bad_site_exits_8_without_a_traceback(tmp_path: Path, site: str) -> None:
    path = tmp_path / "idstation.toml"
    path.write_text(f'site = "{site}"\nstate_dir = "{tmp_path}"\n[reader]\nkind = "sim"\n', encoding="utf-8")
    done = _run(["run", "--config", str(path)])
    assert done.returncode == 8
    assert "Traceback" not in done.stderr
    assert "site" in done.stderr


def test_a_site_too_long_for_the_pairing_code_fails_config_check_with_exit_8(tmp_path: Path) -> None:
    """65 characters pass the topic rule (128) but could never be enrolled (the QR code's 64)."""
    problems = _problems(tmp_path, f'site = "{"s" * 65}"\n')
    assert list(problems) == ["site"]
    assert problems["site"].startswith("must be 1-64 ")
    done = _run(["config", "check", "--config", str(tmp_path / "idstation.toml")])
    assert done.returncode == 8
    assert done.stdout.startswith("site: must be 1-64 ") and done.stdout.rstrip().endswith("(file)")
    problems = _problems(tmp_path, "", {"IDSTATION_COUNTER": "c" * 65})
    assert problems["counter"].startswith("must be 1-64 ")


def test_a_64_character_site_and_counter_pass_config_check(tmp_path: Path) -> None:
    path = tmp_path / "idstation.toml"
    path.write_text(f'site = "{"s" * 64}"\ncounter = "{"c" * 64}"\n', encoding="utf-8")
    done = _run(["config", "check", "--config", str(path)])
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("ok: ")


@pytest.mark.parametrize("name", ["a" * 64, "a" * 65, "a" * 128, "a" * 129, "hn-01", ".x", "a/b", "a b", "é"])
def test_config_accepts_a_name_exactly_when_enrolment_does(name: str) -> None:
    try:
        Config(site=name, counter=name)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is valid_name(name)


def test_genuine_values_still_load() -> None:
    cfg = load_config(None, environ={"IDSTATION_SITE": "hn-01", "IDSTATION_BROKER__URL": "mqtts://broker.example:8883",
                                     "IDSTATION_CAMERA__RESOLUTION": "[1280, 960]"})  # fmt: skip
    assert (cfg.site, cfg.broker.url, cfg.camera.resolution) == ("hn-01", "mqtts://broker.example:8883", (1280, 960))
    with pytest.raises(ConfigInvalid):
        load_config(None, environ={"IDSTATION_COUNTER": "x\n"})


@pytest.mark.parametrize("site", ["a/#", "s" * 65])
def test_run_with_a_bad_site_in_binding_json_exits_8_not_a_crash_loop(tmp_path: Path, site: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from idstation.agent.sim.provision import provision_for_tests

    state = tmp_path / "box"
    key = X25519PrivateKey.generate().public_key()
    provision_for_tests(state, "hn-01", "c01", tmp_path / "ca", key, "mqtt://127.0.0.1:1")
    binding = state / "identity" / "binding.json"
    doc = json.loads(binding.read_text(encoding="utf-8"))
    doc["site"] = site  # written by an older version, or by hand
    binding.write_text(json.dumps(doc), encoding="utf-8")
    path = tmp_path / "idstation.toml"
    path.write_text(f'state_dir = "{state}"\n[reader]\nkind = "sim"\n[camera]\nkind = "sim"\n', encoding="utf-8")
    done = _run(["run", "--config", str(path)])
    assert done.returncode == 8
    assert "binding.json" in done.stderr
    assert "TypeError" not in done.stderr
