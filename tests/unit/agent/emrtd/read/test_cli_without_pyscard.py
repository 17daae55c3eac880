"""`idstation read-card --reader pcsc` on a machine without pyscard: the install hint, exit 7, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

# The command line as a user runs it, in an interpreter where pyscard cannot be imported
# (``sys.modules["smartcard"] = None`` makes every ``import smartcard`` fail, as on a stock Debian).
WITHOUT_PYSCARD = (
    "import sys; sys.modules['smartcard'] = None; from idstation.agent.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", WITHOUT_PYSCARD, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_read_card_json_names_the_pcsc_extra_and_the_debian_package() -> None:
    done = _run("read-card", "--reader", "pcsc", "--can", "123456", "--json", "--timeout", "1")
    assert done.returncode == 7
    doc = json.loads(done.stdout)
    assert doc["error"] == "device_error"
    assert "idstation[pcsc]" in doc["message"]
    assert "python3-pyscard" in doc["message"]
    assert "Traceback" not in done.stderr


def test_read_card_text_mode_prints_the_hint_on_stderr() -> None:
    done = _run("read-card", "--reader", "pcsc:ACS", "--can", "123456", "--timeout", "1")
    assert done.returncode == 7
    assert "python3-pyscard" in done.stderr
    assert "Traceback" not in done.stderr
