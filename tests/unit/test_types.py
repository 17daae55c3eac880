"""The pure cores (eMRTD, QR), provisioning, the box's command line and configuration type-check under mypy --strict.

mypy cannot follow setuptools' editable-install mapping of agent/ → idstation.agent, so the test
builds a throwaway tree of symlinks named like the installed package and checks that. The package
lists match pyproject.toml's ``[[tool.mypy.overrides]] strict = true``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("agent", "hal", "mqtt", "provisioning", "firmware_cfg")
STRICT_PACKAGES = ("idstation.agent.emrtd", "idstation.agent.qr")
# The wiring that turns a blank box into a counter box and the command line over everything. The
# modules they import are analysed for their types but reported only by their own packages' checks
# (--follow-imports=silent).
STRICT_WIRING = ("idstation.provisioning", "idstation.agent.cli")
STRICT_WIRING_MODULES = ("idstation.agent.config",)
# pydantic's plugin gives the configuration's models their real __init__ signatures (pyproject.toml has it too)
MYPY_INI = "[mypy]\nplugins = pydantic.mypy\n"


def _mypy(tmp_path: Path, packages: tuple[str, ...], *extra: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    package = tmp_path / "idstation"
    package.mkdir()
    for folder in FOLDERS:
        (package / folder).symlink_to(ROOT / folder, target_is_directory=True)
    command = [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.11", "--ignore-missing-imports"]
    command += ["--namespace-packages", "--explicit-package-bases", "--cache-dir", str(tmp_path / ".mypy_cache")]
    command += extra
    for name in packages:
        command += ["-p", name]
    return subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_pure_cores_are_mypy_strict_clean(tmp_path: Path) -> None:
    result = _mypy(tmp_path, STRICT_PACKAGES)
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.slow
def test_provisioning_the_command_line_and_the_configuration_are_mypy_strict_clean(tmp_path: Path) -> None:
    (tmp_path / "mypy.ini").write_text(MYPY_INI, encoding="utf-8")
    extra = ["--config-file", str(tmp_path / "mypy.ini"), "--follow-imports=silent"]
    for name in STRICT_WIRING_MODULES:
        extra += ["-m", name]
    result = _mypy(tmp_path, STRICT_WIRING, *extra)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "no issues found" in result.stdout
