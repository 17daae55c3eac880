"""Every Python dependency resolves for the box (Raspberry Pi OS Bookworm, aarch64, CPython 3.11) without a
compiler: as an aarch64 wheel, or from a Raspberry Pi OS package seen through the venv's system site packages.
And install-pi.sh installs what the box needs, idempotently."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
INSTALL = REPO / "provisioning" / "install-pi.sh"
# Bookworm has glibc 2.36: every manylinux tag up to 2.36 runs there. pip 23 does not widen --platform.
PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in (17, 24, 26, 27, 28, 31, 34, 35, 36)]
# Requirements that come from Raspberry Pi OS packages instead (apt name), with why.
FROM_APT = {"pyscard": "python3-pyscard", "picamera2": "python3-picamera2"}
CHECKED_WHEELS = ("cryptography", "pydantic_core", "zxing_cpp", "paho_mqtt", "structlog")
NETWORK_HINTS = ("NewConnectionError", "Max retries", "Temporary failure in name resolution", "Could not fetch URL")


def _requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["box"]]  # the box installs idstation[box]


def _pip_download(dest: Path, requirements: list[str], *, deps: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(dest)]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    argv += ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    if not deps:
        argv.append("--no-deps")
    constraints = dest / "constraints.txt"
    dest.mkdir(parents=True, exist_ok=True)
    constraints.write_text("numpy<2\n")  # the venv must not shadow Debian's numpy 1.x (picamera2)
    argv += ["--constraint", str(constraints), *requirements]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.integration
@pytest.mark.slow
def test_every_dependency_has_an_aarch64_cp311_wheel(tmp_path: Path) -> None:
    result = _pip_download(tmp_path / "wheels", _requirements())
    if result.returncode != 0 and any(hint in result.stdout + result.stderr for hint in NETWORK_HINTS):
        pytest.skip("no package index reachable")
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = sorted(p.name for p in (tmp_path / "wheels").glob("*.whl"))
    assert not list((tmp_path / "wheels").glob("*.tar.gz")), "an sdist would need a compiler"
    for name in wheels:
        tags = name.removesuffix(".whl").split("-")[-1]
        assert tags == "any" or "aarch64" in tags, name
    names = {re.split(r"-\d", name)[0].lower() for name in wheels}
    for required in CHECKED_WHEELS:
        assert required in names, f"{required} did not resolve as a wheel"


@pytest.mark.integration
@pytest.mark.slow
def test_pyscard_has_no_aarch64_wheel_so_it_comes_from_apt(tmp_path: Path) -> None:
    result = _pip_download(tmp_path / "wheels", ["pyscard"], deps=False)
    if result.returncode != 0 and any(hint in result.stdout + result.stderr for hint in NETWORK_HINTS):
        pytest.skip("no package index reachable")
    assert result.returncode != 0, "pyscard now has an aarch64 wheel: it could move to pip"
    script = INSTALL.read_text()
    for apt_name in FROM_APT.values():
        assert apt_name in script
    assert "--system-site-packages" in script


def test_install_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(INSTALL)], check=True, timeout=30)


def _install_into(root: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(INSTALL), "--root", str(root)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_install_into_a_root_twice_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = _install_into(root)
    assert first.returncode == 0, first.stderr
    snapshot = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    (root / "etc/idstation/idstation.toml").write_text("# edited by the technician\n")
    second = subprocess.run(
        [str(INSTALL), "--root", str(root)], capture_output=True, text=True, timeout=60, check=False
    )
    assert second.returncode == 0, second.stderr
    assert "installed" not in second.stdout  # nothing changed the second time
    assert (root / "etc/idstation/idstation.toml").read_text() == "# edited by the technician\n"
    for path, data in snapshot.items():
        if path.name != "idstation.toml":
            assert path.read_bytes() == data, path
    config_txt = (root / "boot/firmware/config.txt").read_text()
    assert config_txt.count("# >>> idstation >>>") == 1
    unit = root / "etc/systemd/system/idstation.service"
    assert unit.read_text() == (REPO / "systemd/idstation.service").read_text()
    assert (root / "etc/polkit-1/rules.d/60-idstation-pcscd.rules").exists()
    assert (root / "var/lib/idstation").stat().st_mode & 0o777 == 0o700


def test_dry_run_lists_apt_user_and_venv_steps(tmp_path: Path) -> None:
    out = subprocess.run([str(INSTALL), "--dry-run"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "python3-picamera2" in out and "pcscd" in out and "python3-pyscard" in out
    assert "useradd --system" in out and "--system-site-packages" in out and "--only-binary=:all:" in out
