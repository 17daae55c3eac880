"""``idstation card serve`` + real pcscd/vpcd + ``idstation read-card``, both as subprocesses.

Every fault switch of ``card serve`` gives its documented result and exit code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from idstation.agent.sim.profiles import builtin_profiles, qr_text

pytestmark = pytest.mark.integration

READER = "Virtual PCD 00 00"
AN = builtin_profiles()["an"]
CAN = AN.id_number[-6:]
IDSTATION = [sys.executable, "-m", "idstation.agent.cli"]
ENV = os.environ | {"IDSTATION_LOG_LEVEL": "warning"}


def _watcher() -> Any:
    from idstation.hal.reader_pcsc import PcscReader

    return PcscReader(READER)


@pytest.fixture
def serve(vpcd_lock: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``serve(profile, *flags)``: run ``idstation card serve`` until the card is on the reader."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(profile: str = "an", *flags: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [*IDSTATION, "card", "serve", "--profile", profile, "--port", "35963", *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV,
        )  # fmt: skip
        procs.append(proc)
        watcher = _watcher()
        try:
            if not watcher.wait_for_presence(20.0):
                proc.kill()
                pytest.fail("card serve did not put a card on the vpcd reader: " + _stderr(proc))
        finally:
            watcher.close()
        return proc

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()
    watcher = _watcher()
    try:
        watcher.wait_for_removal(10.0)
    finally:
        watcher.close()


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    try:
        _out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        return ""
    return err.decode(errors="replace")[-2000:]


def read_card(*keys: str, extra: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    argv = [*IDSTATION, "read-card", "--reader", f"pcsc:{READER}", "--timeout", "10", "--json", *keys, *extra]
    done = subprocess.run(argv, capture_output=True, timeout=120, env=ENV, check=False)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"read-card printed no JSON (exit {done.returncode}): {done.stderr.decode()[-2000:]}")


def trusted(*keys: str) -> tuple[int, dict[str, Any]]:
    """read-card as a tester runs it: a virtual (vpcd) reader trusts the test CSCA by default."""
    return read_card(*keys)


def test_pace_can_read_through_pcscd_is_verified(serve) -> None:
    serve()
    code, doc = trusted("--can", CAN)
    assert (code, doc["access"]) == (0, "PACE-CAN")
    assert doc["citizen"]["full_name"] == AN.full_name
    assert {v["result"] for v in doc["verification"].values()} == {"ok"}


def test_qr_text_opens_the_chip_with_pace_can(serve) -> None:
    serve()
    code, doc = trusted("--qr", qr_text(AN))
    assert (code, doc["access"]) == (0, "PACE-CAN")


def test_mrz_fields_open_the_chip_with_pace_mrz(serve) -> None:
    serve()
    dob = AN.date_of_birth.strftime("%y%m%d")
    code, doc = trusted("--doc-number", AN.id_number[-9:], "--dob", dob, "--expiry", AN.mrz_expiry)
    assert (code, doc["access"]) == (0, "PACE-MRZ")


def test_bac_only_card_is_read_with_bac_keys_from_the_qr(serve) -> None:
    serve("an", "--bac-only")
    code, doc = trusted("--qr", qr_text(AN))
    assert (code, doc["access"]) == (0, "BAC")


def test_refused_pace_mrz_falls_back_to_bac(serve) -> None:
    serve("an", "--pace-mrz-refused")
    dob = AN.date_of_birth.strftime("%y%m%d")
    code, doc = trusted("--doc-number", AN.id_number[-9:], "--dob", dob, "--expiry", AN.mrz_expiry)
    assert (code, doc["access"]) == (0, "BAC")


def test_wrong_can_exits_4(serve) -> None:
    serve()
    code, doc = trusted("--can", "000000")
    assert (code, doc["error"]) == (4, "access_denied")


def test_tampered_data_group_exits_1_with_passive_failed(serve) -> None:
    serve("an", "--tamper-dg", "13")
    code, doc = trusted("--can", CAN)
    assert code == 1
    assert doc["verification"]["passive"]["result"] == "failed"
    assert doc["citizen"] is not None  # the JSON is printed in full


def test_expired_signer_exits_1(serve) -> None:
    serve("an", "--expired-signer")
    code, doc = trusted("--can", CAN)
    assert code == 1
    assert doc["verification"]["passive"]["result"] == "signer_expired"


def test_unknown_csca_exits_1_with_unknown_csca(serve) -> None:
    serve("an", "--unknown-csca")
    code, doc = trusted("--can", CAN)
    assert code == 1
    assert doc["verification"]["passive"]["result"] == "unknown_csca"


def test_explicit_csca_directory_replaces_the_test_csca(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    serve()
    code, doc = read_card("--can", CAN, extra=("--csca", str(tmp_path)))
    assert (code, doc["verification"]["passive"]["result"]) == (1, "unknown_csca")
    code, doc = read_card("--can", CAN, extra=("--csca", str(tmp_path), "--trust-test-csca"))
    assert (code, doc["verification"]["passive"]["result"]) == (0, "ok")


def test_card_pulled_mid_read_exits_5_and_the_next_card_reads(serve) -> None:
    serve("an", "--remove-after", "12", "--reinsert-after", "1.0")
    code, doc = trusted("--can", CAN)
    assert (code, doc["error"]) == (5, "card_removed")
    watcher = _watcher()
    try:
        assert watcher.wait_for_presence(10.0)
    finally:
        watcher.close()
    code, doc = trusted("--can", CAN)
    assert (code, doc["access"]) == (0, "PACE-CAN")


@pytest.mark.parametrize("flags", [("--slow-ms", "20"), ("--no-extended-length",), ("--no-sfi",)], ids=str)
def test_chip_quirks_still_read(serve, flags: tuple[str, ...]) -> None:
    serve("an", *flags)
    code, doc = trusted("--can", CAN)
    assert (code, doc.get("access")) == (0, "PACE-CAN"), doc


def test_reader_without_extended_length_reads_with_short_apdus(serve) -> None:
    serve()
    code, doc = read_card("--can", CAN, extra=("--short-apdus",))
    assert code == 0
    assert doc["apdus"] > 17  # more, shorter commands


@pytest.mark.parametrize("flag", ["--bad-response-mac", "--dead-after-access"])
def test_broken_chip_exits_6(serve, flag: str) -> None:
    serve("an", flag)
    code, doc = trusted("--can", CAN)
    assert (code, doc["error"]) == (6, "card_error")


def test_no_card_exits_3(vpcd_lock: str) -> None:
    code, doc = read_card("--can", CAN, extra=("--timeout", "0.5"))
    assert (code, doc["error"]) == (3, "no_card")


def test_inspect_through_pcscd_holds_no_personal_data(serve) -> None:
    serve("lifelong")
    lifelong = builtin_profiles()["lifelong"]
    argv = [*IDSTATION, "card", "inspect", "--reader", f"pcsc:{READER}", "--qr", qr_text(lifelong), "--json"]
    done = subprocess.run(argv, capture_output=True, timeout=120, env=ENV, check=False)
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report["access"] == "PACE-CAN"
    text = done.stdout.decode()
    for secret in (lifelong.id_number, lifelong.full_name, lifelong.id_number[-9:], lifelong.permanent_address):
        assert secret not in text
