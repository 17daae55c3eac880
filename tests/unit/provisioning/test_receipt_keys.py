"""Receipt keys reach the box with its provisioning, and rotate through renewal (issue 12).

`central init-ca` makes the receipt key beside the central key; every bundle (offline, online,
renewal) carries the public set; the box keeps it in identity/receipt_keys.pem and trusts a receipt
from any key in it.
"""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from idstation.agent.cli import main
from idstation.mqtt.central import receipt_keys
from idstation.mqtt.central.ca_setup import open_enroller
from idstation.mqtt.central.receipts import load_receipt_signer
from idstation.mqtt.receipt import ReceiptRejected, build_receipt, parse_receipt
from idstation.mqtt.seal import Signer
from idstation.provisioning.bundle import apply_bundle, parse_bundle, sign_bundle
from idstation.provisioning.errors import BundleError, CaError
from idstation.provisioning.identity import InitResult, init_device, load_receipt_keys
from idstation.provisioning.renew import apply_any, stage_renewal

from .conftest import csr_of


@pytest.fixture
def central(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "central"
    code = main(["central", "init-ca", "--dir", str(root), "--broker-url", "mqtts://broker.example:8883", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["receipt_key"] == str(root / "receipt_key.pem")
    return root


@pytest.fixture
def enrolled_box(tmp_path: Path, central: Path) -> tuple[Path, InitResult]:
    enroller = open_enroller(central)
    state = tmp_path / "box"
    box = init_device(state, site="hn-bd-001", counter="c01", fleet_ca_fingerprint=enroller.ca.fingerprint)
    enroller.expect(box.pairing)
    apply_bundle(state, enroller.enroll(csr_of(box), token=box.pairing.token).to_bytes())
    return state, box


def _receipt(signer: Signer, box: InitResult) -> bytes:
    return build_receipt(box.device.device_id, box.device.key_id, 3, [], signer)


def test_init_ca_makes_the_receipt_key_beside_the_central_key(central: Path) -> None:
    key_file = central / "receipt_key.pem"
    assert (central / "central_key.pem").exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    signer = load_receipt_signer(key_file)
    assert isinstance(signer.key, ed25519.Ed25519PrivateKey)
    public = receipt_keys.handed_out(central)
    assert [k.public_bytes_raw() for k in public] == [signer.key.public_key().public_bytes_raw()]
    assert (central / "receipt.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_the_enrolled_box_trusts_receipts_signed_by_the_centre(
    central: Path, enrolled_box: tuple[Path, InitResult]
) -> None:
    state, box = enrolled_box
    trusted = load_receipt_keys(state)
    assert (state / "identity" / "receipt_keys.pem").exists()
    receipt = parse_receipt(_receipt(load_receipt_signer(central / "receipt_key.pem"), box), trusted)
    assert receipt.device_id == box.device.device_id and receipt.covers(3)
    with pytest.raises(ReceiptRejected):
        parse_receipt(_receipt(Signer(ed25519.Ed25519PrivateKey.generate()), box), trusted)


def test_rotation_rolls_in_through_renewal(central: Path, enrolled_box: tuple[Path, InitResult]) -> None:
    state, box = enrolled_box
    old_signer = load_receipt_signer(central / "receipt_key.pem")
    staged = receipt_keys.add(central)
    renewal = open_enroller(central).renew(stage_renewal(state))
    apply_any(state, renewal.to_bytes())
    trusted = load_receipt_keys(state)
    assert len(trusted) == 2
    assert receipt_keys.activate(central) == staged
    new_signer = load_receipt_signer(central / "receipt_key.pem")
    assert new_signer.key_id == staged
    for signer in (old_signer, new_signer):  # any key of the current set
        assert parse_receipt(_receipt(signer, box), trusted).receipt_key_id == signer.key_id
    receipt_keys.retire(central, old_signer.key_id)
    assert [k.key_id for k in receipt_keys.listing(central)] == [staged]


def test_the_active_key_cannot_be_retired(central: Path) -> None:
    with pytest.raises(CaError):
        receipt_keys.retire(central, load_receipt_signer(central / "receipt_key.pem").key_id)


def test_a_bundle_without_receipt_keys_keeps_the_installed_set(
    central: Path, enrolled_box: tuple[Path, InitResult]
) -> None:
    state, _box = enrolled_box
    before = (state / "identity" / "receipt_keys.pem").read_bytes()
    enroller = open_enroller(central)
    bundle = parse_bundle(enroller.renew(stage_renewal(state)).to_bytes())
    legacy = sign_bundle(replace(bundle, receipt_keys_pem="", signature=""), enroller.ca.sign_blob)
    assert b"receipt_keys_pem" not in legacy.signed_part()  # an older centre's bundle verifies as before
    apply_any(state, legacy.to_bytes())
    assert (state / "identity" / "receipt_keys.pem").read_bytes() == before


def test_a_bundle_with_broken_receipt_keys_is_refused(tmp_path: Path, central: Path) -> None:
    enroller = open_enroller(central)
    state = tmp_path / "box2"
    box = init_device(state, site="hn-bd-001", counter="c01", fleet_ca_fingerprint=enroller.ca.fingerprint)
    bundle = parse_bundle(enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    forged = sign_bundle(replace(bundle, receipt_keys_pem=broken, signature=""), enroller.ca.sign_blob)
    with pytest.raises(BundleError, match="receipt keys"):
        apply_bundle(state, forged.to_bytes())


def test_a_box_enrolled_before_receipt_keys_has_none(state_dir: Path, box: InitResult) -> None:
    assert load_receipt_keys(state_dir) == []


def test_receipt_key_cli_lists_and_stages(central: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["central", "receipt-key", "add", "--dir", str(central), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(k["status"] for k in doc["keys"]) == ["active", "staged"]


def test_a_central_directory_without_receipt_key_gets_one_by_add(tmp_path: Path, central: Path) -> None:
    for name in ("receipt_key.pem", "receipt.pub.pem", "receipt_keys.pem"):
        (central / name).unlink()  # as init-ca left it before receipt keys existed
    assert open_enroller(central).policy.receipt_keys_pem() == ""
    key_id = receipt_keys.add(central)
    assert [(k.key_id, k.status) for k in receipt_keys.listing(central)] == [(key_id, "active")]
    assert "BEGIN PUBLIC KEY" in open_enroller(central).policy.receipt_keys_pem()
