"""The command line's one exit-code table and its one catch-all."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from idstation.agent.cli import dispatch, main
from idstation.agent.cli.exitcodes import TABLE, Exit, UsageError, entry_for
from idstation.agent.config import ConfigInvalid
from idstation.agent.emrtd.sm import SmDropped
from idstation.hal.errors import CardRemoved, IdstationError
from idstation.provisioning.errors import BundleError, EnrollError, NotProvisioned, TokenError

ROOT = Path(__file__).resolve().parents[3]


def test_readme_exit_code_table_is_the_enum() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    assert documented == {int(e) for e in Exit} == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 70}


def test_every_table_code_is_documented() -> None:
    assert {entry.code for entry in TABLE.values()} <= set(Exit)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (TokenError("used token"), Exit.USAGE),  # ProvisioningError's entry
        (BundleError("tampered"), Exit.USAGE),  # ProvisioningError before ValueError in its MRO
        (EnrollError("revoked"), Exit.FAILED),
        (NotProvisioned("no identity"), Exit.CONFIG_ERROR),
        (ConfigInvalid([]), Exit.CONFIG_ERROR),  # ConfigError
        (SmDropped(0x6988), Exit.CARD_ERROR),  # ApduError -> CardError
        (CardRemoved("gone"), Exit.CARD_REMOVED),
        (FileNotFoundError(2, "No such file", "x.pem"), Exit.USAGE),
        (IdstationError("other"), Exit.FAILED),
        (KeyError("bug"), Exit.INTERNAL),
    ],
)
def test_a_subclass_resolves_to_its_nearest_entry(exc: BaseException, code: Exit) -> None:
    assert entry_for(exc).code == code


def test_a_new_subclass_needs_no_new_entry() -> None:
    class LostInTransit(CardRemoved):
        pass

    assert entry_for(LostInTransit("x")) == TABLE[CardRemoved]


def _args(func, **extra) -> argparse.Namespace:  # type: ignore[no-untyped-def]
    return argparse.Namespace(func=func, log_level=extra.pop("log_level", None), **extra)


def _crash(_args: argparse.Namespace) -> int:
    secret = {"name": "Nguyễn Văn An"}
    return secret["id_number"]  # type: ignore[return-value]  # a bug: KeyError


def test_an_unexpected_exception_exits_70_with_one_line_naming_its_type(capsys: pytest.CaptureFixture[str]) -> None:
    code = dispatch(_args(_crash))
    err = capsys.readouterr().err
    assert code == 70
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "KeyError" in lines[0]
    assert "Traceback" not in err and "id_number" not in err


def test_debug_log_level_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = dispatch(_args(_crash, log_level="debug"))
    assert code == 70
    assert "Traceback" in capsys.readouterr().err


def test_json_commands_print_an_error_object_even_for_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    code = dispatch(_args(_crash, json=True))
    doc = json.loads(capsys.readouterr().out)
    assert code == 70 and doc["error"] == "internal" and doc["exit_code"] == 70 and "KeyError" in doc["message"]


def test_a_typed_error_raised_by_a_handler_gets_its_table_code(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(_args: argparse.Namespace) -> int:
        raise UsageError("--taps must be 1-1000")

    code = dispatch(_args(handler, json=True))
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc == {"ok": False, "error": "bad_input", "message": "--taps must be 1-1000", "exit_code": 2}


def test_a_real_command_failure_prints_json_with_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["provision", "show", "--state-dir", str(tmp_path / "blank"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 8 and doc["error"] in {"NotProvisioned", "StateError"} and doc["message"]
