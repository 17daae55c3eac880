"""The shipped operations files agree with the code: the listener unit's command line parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from idstation.agent.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]


def _exec_start(unit: Path) -> list[str]:
    text = unit.read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    return [re.sub(r"\$\{?(\w+)\}?%?i?", "1", arg).replace("%i", "1") for arg in argv]


def test_the_listener_template_unit_runs_a_command_line_the_cli_accepts() -> None:
    argv = _exec_start(ROOT / "systemd" / "idstation-central-listener@.service")
    assert argv[:3] == ["/usr/local/bin/idstation", "central", "listen"]
    args = build_parser().parse_args(argv[1:])
    assert args.amqp and args.store and args.metrics and args.prefetch == 1
