"""The box's systemd unit does not restart-loop on what a restart cannot fix."""

from __future__ import annotations

import configparser
from pathlib import Path

from idstation.agent.exitcodes import Exit

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "idstation.service"


def test_a_configuration_error_stops_the_unit_instead_of_restarting_it() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    service = parser["Service"]
    assert service["Restart"] == "always"  # crashes and watchdog kills are still restarted
    assert str(int(Exit.CONFIG_ERROR)) in service["RestartPreventExitStatus"].split()
