"""`idstation decode-qr` on a pixel bomb, as a user runs it: a typed refusal in JSON, memory bounded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.unit.hal.test_image_file import grey_png

IDSTATION = shutil.which("idstation") or "idstation"


def test_a_13000_pixel_square_png_is_refused_in_json_within_the_memory_budget(tmp_path: Path) -> None:
    bomb = grey_png(tmp_path / "bomb.png", 13_000, 13_000)
    # a small probe runs the command: its child's ru_maxrss starts from the probe's size, not pytest's
    script = (
        "import json, resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
        "print(json.dumps({'code': done.returncode, 'out': done.stdout, 'err': done.stderr, 'peak_mb': peak}))\n"
    )
    probe = subprocess.run(
        [sys.executable, "-c", script, IDSTATION, "decode-qr", "--json", str(bomb)],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    report = json.loads(probe.stdout)
    assert report["code"] == 2  # the image is unusable input
    [result] = json.loads(report["out"])
    assert result["ok"] is False
    assert "13000 x 13000" in result["error"]
    assert "Traceback" not in report["err"]
    assert report["peak_mb"] < 150  # the box service's MemoryMax is 200 MB; decoding it whole took 705 MB
