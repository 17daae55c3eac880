"""The provisioning command line: offline enrolment end to end, JSON keys and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_cli as run


def _init(capsys: pytest.CaptureFixture[str], box: Path, *extra: str) -> dict:
    code, doc = run(
        capsys,
        *("provision", "init", "--site", "hn-bd-001", "--counter", "c01", "--state-dir", str(box), "--json"),
        *extra,
    )
    assert code == 0
    return doc


def _fingerprint(central_dir: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate((central_dir / "ca" / "ca.crt").read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def _offline_bundle(capsys: pytest.CaptureFixture[str], central_dir: Path, init: dict, bundle: Path) -> None:
    code, doc = run(
        capsys,
        *("central", "enroll", "--dir", str(central_dir), "--pairing-code", init["pairing_code"]),
        *("--csr", init["csr"], "--bundle-out", str(bundle), "--json"),
    )
    assert code == 0 and doc["device_id"] == init["device_id"]


def test_init_json_has_ids_and_pairing_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _init(capsys, tmp_path / "box")
    assert set(doc) >= {"device_id", "key_id", "site", "counter", "tls_fingerprint", "pairing_code", "csr"}
    assert doc["pairing_code"].startswith("IDSPAIR:1:" + doc["device_id"])


def test_init_text_draws_the_qr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "provision", "init", "--site", "s1", "--counter", "c1", "--state-dir", str(tmp_path / "b"))
    assert code == 0 and "█" in doc["text"] and "pairing code" in doc["text"]


def test_offline_enrolment_by_bundle(tmp_path: Path, central_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    box = tmp_path / "box"
    init = _init(capsys, box, "--fleet-ca-fingerprint", _fingerprint(central_dir))
    assert init["fleet_ca_sha256"] == _fingerprint(central_dir)
    bundle = tmp_path / "usb" / "bundle.json"
    bundle.parent.mkdir()
    _offline_bundle(capsys, central_dir, init, bundle)
    code, doc = run(capsys, "provision", "apply", "--bundle", str(bundle), "--state-dir", str(box), "--json")
    assert code == 0
    assert doc["device_id"] == init["device_id"] and doc["broker_url"] == "mqtts://broker.example:8883"
    code, doc = run(capsys, "provision", "show", "--state-dir", str(box), "--json")
    assert code == 0 and doc["enrolled"] is True


def test_unconfirmed_fleet_ca_refuses_the_bundle_exit_2(
    tmp_path: Path, central_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = tmp_path / "box"
    init = _init(capsys, box)
    _offline_bundle(capsys, central_dir, init, tmp_path / "bundle.json")
    apply = ("provision", "apply", "--bundle", str(tmp_path / "bundle.json"), "--state-dir", str(box), "--json")
    code, doc = run(capsys, *apply)
    assert code == 2 and doc["error"] == "BundleError" and "fingerprint" in doc["message"]
    code, doc = run(capsys, *apply, "--fleet-ca-fingerprint", _fingerprint(central_dir))
    assert code == 0 and doc["device_id"] == init["device_id"]


def test_reused_token_exits_2(tmp_path: Path, central_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init = _init(capsys, tmp_path / "box")
    args = (
        "central",
        "enroll",
        "--dir",
        str(central_dir),
        "--pairing-code",
        init["pairing_code"],
        "--csr",
        init["csr"],
    )
    assert run(capsys, *args, "--bundle-out", str(tmp_path / "b1.json"))[0] == 0
    code, doc = run(capsys, *args, "--bundle-out", str(tmp_path / "b2.json"), "--json")
    assert code == 2 and doc["error"] == "TokenError"


def test_bundle_for_another_device_exits_2(
    tmp_path: Path, central_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _init(capsys, tmp_path / "box")
    other = _init(capsys, tmp_path / "other")
    bundle = tmp_path / "other.json"
    run(capsys, "central", "enroll", "--dir", str(central_dir), "--pairing-code", other["pairing_code"])
    run(capsys, "central", "enroll", "--dir", str(central_dir), "--csr", other["csr"], "--site", "hn-bd-001")
    code, _ = run(
        capsys,
        *("central", "enroll", "--dir", str(central_dir), "--csr", other["csr"]),
        *("--site", "hn-bd-001", "--counter", "c01", "--bundle-out", str(bundle)),
    )
    assert code == 0
    code, doc = run(
        capsys, "provision", "apply", "--bundle", str(bundle), "--state-dir", str(tmp_path / "box"), "--json"
    )
    assert code == 2 and doc["error"] == "BundleError"


def test_apply_before_init_exits_8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.json").write_text("{}")
    code, _ = run(
        capsys, "provision", "apply", "--bundle", str(tmp_path / "b.json"), "--state-dir", str(tmp_path / "x")
    )
    assert code in (2, 8)
    code, doc = run(capsys, "provision", "show", "--state-dir", str(tmp_path / "x"), "--json")
    assert code == 8 and doc["error"] == "NotProvisioned"


def test_missing_bundle_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(capsys, "provision", "apply", "--bundle", str(tmp_path / "nope.json"), "--state-dir", str(tmp_path))
    assert code == 2


@pytest.mark.parametrize("site", ["a/b", "s" * 65])
def test_bad_site_name_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], site: str) -> None:
    code, _ = run(capsys, "provision", "init", "--site", site, "--counter", "c", "--state-dir", str(tmp_path / "b"))
    assert code == 2
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*.key"))


def test_revoke_json(tmp_path: Path, central_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "central", "revoke", "ids-0123456789abcdef", "--dir", str(central_dir), "--json")
    assert code == 0 and doc == {"ok": True, "device_id": "ids-0123456789abcdef", "revoked": True, "certificates": 0}


def test_selftest_unprovisioned_fails_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "selftest", "--state-dir", str(tmp_path), "--reader", "sim", "--camera", "none", "--json")
    assert code == 1 and doc["ok"] is False
    by_name = {c["name"]: c for c in doc["checks"]}
    assert by_name["reader"]["ok"] and not by_name["identity"]["ok"] and not by_name["broker"]["ok"]
    assert all(set(c) >= {"name", "ok", "detail"} for c in doc["checks"])


def test_selftest_bad_reader_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(capsys, "selftest", "--state-dir", str(tmp_path), "--reader", "usb-thing")
    assert code == 2
