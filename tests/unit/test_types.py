"""The pure cores (eMRTD, QR) type-check under mypy --strict.

mypy cannot follow setuptools' editable-install mapping of agent/ → idstation.agent, so the test
builds a throwaway tree of symlinks named like the installed package and checks that.
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


@pytest.mark.slow
def test_the_pure_cores_are_mypy_strict_clean(tmp_path: Path) -> None:
    if shutil.which("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    package = tmp_path / "idstation"
    package.mkdir()
    for folder in FOLDERS:
        (package / folder).symlink_to(ROOT / folder, target_is_directory=True)
    command = [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.11", "--ignore-missing-imports"]
    command += ["--namespace-packages", "--explicit-package-bases", "--cache-dir", str(tmp_path / ".mypy_cache")]
    for name in STRICT_PACKAGES:
        command += ["-p", name]
    result = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
