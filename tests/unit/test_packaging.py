"""The design card's folders install under one import namespace."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_code_folders_import_under_the_idstation_namespace() -> None:
    import idstation.agent
    import idstation.hal
    import idstation.mqtt
    import idstation.provisioning

    for module in (idstation.agent, idstation.hal, idstation.mqtt, idstation.provisioning):
        assert Path(module.__file__).parent.parent == ROOT


@pytest.mark.slow
def test_wheel_puts_only_idstation_into_site_packages(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("idstation-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"idstation"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "idstation/agent/cli/__init__.py" in names
    assert "idstation/hal/ports.py" in names


def test_cli_help_lists_every_command_family() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "idstation.agent.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for word in ("card", "central", "provision"):
        assert word in out


def test_readme_cli_reference_names_every_command() -> None:
    from idstation.agent.cli import build_parser

    readme = (ROOT / "README.md").read_text("utf-8")
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    for name, command_parser in sub.choices.items():
        assert f"idstation {name}" in readme, name
        nested = [a for a in command_parser._actions if getattr(a, "choices", None) and a.dest.endswith("_command")]
        for action in nested:
            seen: set[int] = set()
            for child, child_parser in action.choices.items():
                if id(child_parser) in seen:  # an alias of a command already checked
                    continue
                seen.add(id(child_parser))
                assert f"idstation {name} {child}" in readme, f"{name} {child}"
