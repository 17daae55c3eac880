"""The layering of the design card holds: the import-linter contracts in .importlinter (layers,
independence of the central side, the cores apart, the simulator fence, the command line on top)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_is_installed() -> None:
    # the contracts are part of the suite: a missing tool is a failure, never a skip (it is in the dev extra)
    assert shutil.which("lint-imports") is not None, "import-linter is missing: pip install -e '.[dev]'"


def test_import_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports")
    assert exe is not None, "import-linter is missing: pip install -e '.[dev]'"
    result = subprocess.run(
        [exe, "--no-cache", str(ROOT / ".importlinter")], check=False, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "0 broken" in result.stdout


def test_the_contracts_cover_the_layers_the_simulator_and_the_central_side() -> None:
    text = (ROOT / ".importlinter").read_text("utf-8")
    for kind in ("type = layers", "type = independence", "type = forbidden"):
        assert kind in text
    for module in ("idstation.agent.sim", "idstation.mqtt.central", "idstation.agent.cli", "idstation.hal"):
        assert module in text
