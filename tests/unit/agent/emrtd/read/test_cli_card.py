"""The read-card / card commands in process, on the simulated reader (``--reader sim:PROFILE``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from idstation.agent.cli import main
from idstation.agent.sim.profiles import qr_text


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out = run(capsys, *argv, "--json")
    return code, json.loads(out)


def test_read_card_on_a_virtual_card_exits_0_with_the_json(capsys, profiles) -> None:
    code, doc = run_json(capsys, "read-card", "--reader", "sim:an", "--qr", qr_text(profiles["an"]))
    assert code == 0
    assert doc["access"] == "PACE-CAN"
    assert doc["citizen"]["full_name"] == profiles["an"].full_name


def test_read_card_prints_a_human_summary_without_json(capsys, profiles) -> None:
    code, out = run(capsys, "read-card", "--reader", "sim:binh", "--can", profiles["binh"].id_number[-6:])
    assert code == 0
    assert out.startswith("VERIFIED")
    assert profiles["binh"].full_name in out


def test_wrong_can_exits_4_with_an_access_denied_error(capsys) -> None:
    code, doc = run_json(capsys, "read-card", "--reader", "sim:an", "--can", "000000")
    assert (code, doc["error"]) == (4, "access_denied")


@pytest.mark.parametrize(
    "argv",
    [
        ["--can", "12"],
        ["--qr", "not a citizen QR"],
        ["--doc-number", "090123456", "--dob", "900315"],
        ["--can", "123456", "--mrz", "X"],
        [],
    ],
)
def test_bad_key_input_exits_2(capsys, argv: list[str]) -> None:
    code, doc = run_json(capsys, "read-card", "--reader", "sim:an", *argv)
    assert (code, doc["error"]) == (2, "bad_input")


def test_unknown_reader_kind_or_profile_exits_2(capsys) -> None:
    assert run_json(capsys, "read-card", "--reader", "usb:x", "--can", "123456")[0] == 2
    assert run_json(capsys, "read-card", "--reader", "sim:nobody", "--can", "123456")[0] == 2


def test_missing_csca_directory_exits_2(capsys, tmp_path: Path) -> None:
    code, doc = run_json(capsys, "read-card", "--reader", "sim:an", "--can", "123456", "--csca", str(tmp_path / "no"))
    assert (code, doc["error"]) == (2, "bad_input")


def test_csca_directory_without_the_issuer_gives_unknown_csca_and_exit_1(capsys, tmp_path: Path) -> None:
    code, doc = run_json(capsys, "read-card", "--reader", "sim:an", "--can", "123456", "--csca", str(tmp_path))
    assert code == 1
    assert doc["verification"]["passive"]["result"] == "unknown_csca"
    assert doc["citizen"] is not None


def test_make_profile_writes_a_readable_profile_and_prints_its_paths(capsys, tmp_path: Path) -> None:
    out_dir = tmp_path / "p7"
    code, out = run(capsys, "card", "make-profile", "--seed", "7", "--out", str(out_dir))
    assert code == 0
    printed_dir, qr_path = out.strip().splitlines()
    assert Path(printed_dir) == out_dir
    qr = Path(qr_path).read_text("utf-8").strip()
    code, doc = run_json(capsys, "read-card", "--reader", f"sim:{out_dir}", "--qr", qr, "--csca", str(out_dir / "csca"))
    assert code == 0
    assert doc["citizen"]["id_number"] == qr.split("|")[0]


def test_inspect_json_exits_0_without_personal_data(capsys, profiles) -> None:
    an = profiles["an"]
    code, out = run(capsys, "card", "inspect", "--reader", "sim:an", "--qr", qr_text(an), "--json")
    assert code == 0
    assert json.loads(out)["access"] == "PACE-CAN"
    assert an.id_number not in out and an.full_name not in out


def test_no_card_on_a_pcsc_reader_exits_3_or_7(capsys) -> None:
    code, doc = run_json(capsys, "read-card", "--reader", "pcsc:no such reader", "--can", "123456", "--timeout", "0.2")
    assert (code, doc["error"]) in ((3, "no_card"), (7, "device_error"))
