"""The README's two set-up commands on Debian 12's own Python (externally managed, PEP 668).

Each test copies the checkout to a fresh directory and runs the command there with
``PYTHON=/usr/bin/python3``, as an unprivileged user when the suite runs as root (``nobody``, with
the copy as its home), so neither a pre-made virtual environment nor root's pip cache helps it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _externally_managed() -> bool:
    out = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return (Path(out) / "EXTERNALLY-MANAGED").exists()


@pytest.fixture
def checkout() -> Iterator[Path]:
    """A copy of the working tree's files (tracked and new, not ignored) owned by the user who runs it."""
    if not SYSTEM_PYTHON.exists() or shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs Debian's /usr/bin/python3 and a git checkout")
    probe = [str(SYSTEM_PYTHON), "-c", "import ensurepip, venv"]
    if subprocess.run(probe, capture_output=True, check=False).returncode:
        pytest.skip("python3-venv is not installed (tests/run.sh installs it as root)")
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    top = Path(tempfile.mkdtemp(prefix="idstation-first-run-"))
    dest = top / "idstation"
    for raw in filter(None, names):
        source = ROOT / os.fsdecode(raw)
        if source.is_file():
            (dest / os.fsdecode(raw)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / os.fsdecode(raw))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in [top, *top.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    try:
        yield dest
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _run_as_user(checkout: Path, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(checkout.parent),
        "LANG": "C.UTF-8",
        "PYTHON": str(SYSTEM_PYTHON),
    }
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    prefix = [runuser, "-u", "nobody", "--", "env", f"HOME={env['HOME']}"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *argv], cwd=checkout, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_system_python_refuses_pip_install(checkout: Path) -> None:
    """The premise: on Debian 12 a bare ``pip install`` into the system Python fails (PEP 668)."""
    if not _externally_managed():
        pytest.skip("this /usr/bin/python3 is not externally managed")
    result = _run_as_user(checkout, [str(SYSTEM_PYTHON), "-m", "pip", "install", "--dry-run", "."], 300)
    assert result.returncode != 0
    assert "externally-managed-environment" in result.stderr


def test_demo_command_works_on_the_system_python(checkout: Path) -> None:
    result = _run_as_user(checkout, ["./demo.sh", "--taps", "2", "--json"], 1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"summary"' in result.stdout
    assert (checkout / ".venv" / "bin" / "idstation").exists()


def test_test_command_makes_its_venv_and_runs_the_suite_in_it(checkout: Path) -> None:
    """tests/run.sh: venv with the dev extra, ruff, import contracts, then pytest (here a small part)."""
    target = "tests/unit/test_packaging.py::test_code_folders_import_under_the_idstation_namespace"
    result = _run_as_user(checkout, ["bash", "tests/run.sh", "-q", "-p", "no:cacheprovider", target], 1800)
    assert result.returncode == 0, result.stdout[-2500:] + result.stderr[-500:]  # ruff and pytest print on stdout
    assert "Contracts:" in result.stdout
    assert "1 passed" in result.stdout
    venv_python = checkout / ".venv-test" / "bin" / "python"
    home = (checkout / ".venv-test" / "pyvenv.cfg").read_text()
    assert venv_python.exists() and "home = /usr/bin" in home


def test_without_python3_venv_the_command_names_the_package(checkout: Path) -> None:
    """Stock Debian may lack python3-venv: a normal user is told what to install (root gets it by apt)."""
    fake = checkout / "python-without-venv"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "-c" ]; then case "$2" in *ensurepip*) exit 1;; esac; fi\nexec /usr/bin/python3 "$@"\n'
    )
    fake.chmod(0o755)
    argv = ["env", f"PYTHON={fake}", "./demo.sh", "--taps", "1"]
    result = _run_as_user(checkout, argv, 120)  # as nobody when root: the hint path, not apt
    assert result.returncode != 0
    assert "python3-venv" in result.stderr
    assert not (checkout / ".venv").exists()
