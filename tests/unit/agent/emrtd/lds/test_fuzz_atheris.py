"""The coverage-guided chip-input fuzzer (tests/fuzz/lds_harness.py) runs clean for a bounded time."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[4] / "fuzz" / "lds_harness.py"
SECONDS = int(os.environ.get("IDSTATION_FUZZ_SECONDS", "20"))


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed (the fuzz extra)")
def test_libfuzzer_finds_no_crash_in_the_chip_parsers_and_session(tmp_path: Path) -> None:
    command = [sys.executable, str(HARNESS), f"-max_total_time={SECONDS}", "-rss_limit_mb=1024", "-timeout=10"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS + 120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr
