"""`idstation read-card --json` against hostile chips, as a user runs it: JSON on stdout, the README's exit code.

The chip is a profile directory whose ``profile.json`` names a hostile file
(``"faults": {"hostile": NAME}``, see agent/emrtd/virtual_card/hostile.py), read on the in-process
simulated reader (``--reader sim:DIR``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

IDSTATION = shutil.which("idstation") or "idstation"


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSTATION_")}
    return subprocess.run([IDSTATION, *args], env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("profile")
    done = _run(["card", "make-profile", "--seed", "11", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    can = json.loads((out / "profile.json").read_text(encoding="utf-8"))["id_number"][-6:]
    return out, can


def _read_hostile(profile: tuple[Path, str], hostile: str) -> tuple[int, dict[str, object], str]:
    directory, can = profile
    doc = json.loads((directory / "profile.json").read_text(encoding="utf-8"))
    doc["faults"] = {"hostile": hostile}
    (directory / "profile.json").write_text(json.dumps(doc), encoding="utf-8")
    done = _run(["read-card", "--reader", f"sim:{directory}", "--can", can, "--with-face", "--json"])
    return done.returncode, json.loads(done.stdout), done.stderr


@pytest.mark.parametrize("hostile", ["card-access-4gib", "dg2-oversize"])
def test_an_oversized_file_is_a_card_error_in_json_exit_6(profile: tuple[Path, str], hostile: str) -> None:
    code, doc, stderr = _read_hostile(profile, hostile)
    assert code == 6
    assert doc["error"] == "card_error"
    assert "allowed" in str(doc["message"])
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "hostile", ["dg14-huge-prime", "dg14-order-1", "dg14-even-p", "dg14-char2", "dg14-negative-key-id"]
)
def test_a_hostile_dg14_is_a_full_result_with_chip_auth_not_supported(profile: tuple[Path, str], hostile: str) -> None:
    code, doc, stderr = _read_hostile(profile, hostile)
    assert code == 1  # ran, a check failed: DG14 no longer matches its hash in EF.SOD
    verification = doc["verification"]
    assert isinstance(verification, dict)
    assert verification["chip"]["result"] == "not_supported"
    assert verification["passive"]["result"] == "failed"
    assert "Traceback" not in stderr


def test_a_hostile_rsa_aa_key_is_a_failed_active_check_exit_1(profile: tuple[Path, str]) -> None:
    code, doc, stderr = _read_hostile(profile, "dg15-huge-exponent")
    assert code == 1
    verification = doc["verification"]
    assert isinstance(verification, dict)
    assert verification["active"] == {"result": "failed", "reason": "DG15 is malformed"}
    assert "Traceback" not in stderr
