"""Run `idstation demo` as a user does: a subprocess, output captured (shared by the demo tests)."""

from __future__ import annotations

import subprocess
import sys


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idstation.agent.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
