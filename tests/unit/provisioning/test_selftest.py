"""Self-test checks on simulated hardware and on faulty files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from idstation.agent.sim.selftest import SelftestSimulator
from idstation.hal.reader_sim import SimReader
from idstation.provisioning.selftest import (
    Check,
    Report,
    SelftestPlan,
    check_clock,
    check_disk,
    check_outbox,
    check_reader,
    run_selftest,
)
from idstation.provisioning.selftest_devices import camera_factory, reader_factory


def test_sim_reader_and_camera_pass(tmp_path: Path) -> None:
    simulator = SelftestSimulator()
    camera, expect = camera_factory("sim", simulator)
    plan = SelftestPlan(tmp_path, reader=reader_factory("sim", simulator), camera=camera, camera_expect=expect)
    by_name = {c.name: c for c in run_selftest(plan).checks}
    assert by_name["reader"].ok and by_name["camera"].ok
    assert not by_name["identity"].ok  # not provisioned: named, not a crash


def test_empty_reader_fails_with_a_clear_detail() -> None:
    check = check_reader(lambda: SimReader("Empty Reader"), timeout=0.2)
    assert not check.ok and "no card" in check.detail


def test_card_that_refuses_the_emrtd_application_fails() -> None:
    def make() -> SimReader:
        reader = SimReader("R")
        reader.insert(lambda _apdu: b"\x6a\x82")
        return reader

    check = check_reader(make, timeout=1.0)
    assert not check.ok and "6A82" in check.detail


def test_clock_states() -> None:
    assert check_clock(lambda: "synchronised").ok
    assert not check_clock(lambda: "not synchronised").ok
    unknown = check_clock(lambda: "unknown")
    assert unknown.ok and unknown.to_json()["status"] == "unknown"


def test_disk_below_threshold_fails(tmp_path: Path) -> None:
    assert check_disk(tmp_path).ok
    assert not check_disk(tmp_path, min_free=1 << 62).ok


def test_outbox_absent_ok_healthy_ok_garbage_fails(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    assert check_outbox(path).ok
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    assert check_outbox(path).ok
    path.write_bytes(b"this is not a database" * 100)
    assert not check_outbox(path).ok


def test_report_table_and_json() -> None:
    report = Report([Check("a", True, "fine"), Check("b", False, "broken")])
    assert not report.ok
    assert report.to_json() == {
        "ok": False,
        "checks": [
            {"name": "a", "ok": True, "detail": "fine", "status": "pass"},
            {"name": "b", "ok": False, "detail": "broken", "status": "fail"},
        ],
    }
    assert "FAIL" in report.table() and "1/2" in report.table()
