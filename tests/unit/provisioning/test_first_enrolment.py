"""First enrolment: a never-enrolled box trusts only the fleet CA its technician confirmed.

Red-team finding: a never-enrolled box installed a bundle from any CA, and a CA-signed bundle with
site ``a/#`` and counter ``x\\n``. Now ``provision init`` records the fleet CA fingerprint, every
bundle is checked against it, and site and counter against the topic name rules.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from idstation.mqtt.central.enroller import Enroller
from idstation.mqtt.central.fleet_ca import FleetCA
from idstation.mqtt.central.registry import Registry
from idstation.provisioning.bundle import Bundle, apply_bundle, parse_bundle, sign_bundle
from idstation.provisioning.errors import BundleError, EnrollError, NotProvisioned, ProvisioningError
from idstation.provisioning.identity import InitResult, init_device, load_device, load_identity

from .conftest import csr_of


def _rogue(tmp_path: Path, enroller: Enroller) -> Enroller:
    return Enroller(FleetCA.create(tmp_path / "rogue"), Registry(tmp_path / "rogue-reg", create=True), enroller.policy)


def test_unpinned_box_refuses_any_bundle(state_dir: Path, enroller: Enroller) -> None:
    box = init_device(state_dir, site="hn-bd-001", counter="c01")
    bundle = enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01")
    with pytest.raises(BundleError, match="no fleet CA fingerprint confirmed"):
        apply_bundle(state_dir, bundle.to_bytes())
    with pytest.raises(NotProvisioned):
        load_identity(state_dir)


def test_pinned_box_refuses_a_bundle_from_another_ca(
    tmp_path: Path, state_dir: Path, box: InitResult, enroller: Enroller
) -> None:
    rogue = _rogue(tmp_path, enroller)
    with pytest.raises(BundleError, match="other than the confirmed one"):
        apply_bundle(state_dir, rogue.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    with pytest.raises(NotProvisioned):
        load_identity(state_dir)


def test_pinned_box_installs_its_fleet_cas_bundle(state_dir: Path, box: InitResult, enroller: Enroller) -> None:
    identity = apply_bundle(state_dir, enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    assert identity.binding["fleet_ca_sha256"] == enroller.ca.fingerprint


def test_fingerprint_confirmed_at_apply_time(state_dir: Path, enroller: Enroller) -> None:
    box = init_device(state_dir, site="hn-bd-001", counter="c01")
    bundle = enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes()
    spelled = ":".join(enroller.ca.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    assert apply_bundle(state_dir, bundle, fleet_ca_fingerprint=spelled).device_id == box.device.device_id


def test_fingerprint_at_apply_must_agree_with_the_recorded_one(
    tmp_path: Path, state_dir: Path, box: InitResult, enroller: Enroller
) -> None:
    other = FleetCA.create(tmp_path / "other").fingerprint
    bundle = enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes()
    with pytest.raises(BundleError, match="differs"):
        apply_bundle(state_dir, bundle, fleet_ca_fingerprint=other)


def test_malformed_fingerprint_is_refused_at_init(state_dir: Path) -> None:
    with pytest.raises(ProvisioningError, match="64 hex"):
        init_device(state_dir, site="hn-bd-001", counter="c01", fleet_ca_fingerprint="abc")


def test_reinitialisation_keeps_the_pin(state_dir: Path, box: InitResult, enroller: Enroller) -> None:
    apply_bundle(state_dir, enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    again = init_device(state_dir, site="hn-bd-001", counter="c01", force=True)
    assert load_device(state_dir).fleet_ca_sha256 == enroller.ca.fingerprint
    assert again.device.device_id != box.device.device_id


def test_adding_a_pin_before_enrolment_keeps_keys_and_token(state_dir: Path, enroller: Enroller) -> None:
    first = init_device(state_dir, site="hn-bd-001", counter="c01")
    pinned = init_device(state_dir, site="hn-bd-001", counter="c01", fleet_ca_fingerprint=enroller.ca.fingerprint)
    assert pinned.device.device_id == first.device.device_id
    assert pinned.pairing.token == first.pairing.token
    assert pinned.device.fleet_ca_sha256 == enroller.ca.fingerprint


@pytest.mark.parametrize(
    ("site", "counter"), [("a/#", "c01"), ("hn-bd-001", "x\n"), ("hn-bd-001", "+"), ("s" * 65, "c01")]
)
def test_ca_signed_bundle_with_bad_names_is_refused(
    state_dir: Path, box: InitResult, enroller: Enroller, site: str, counter: str
) -> None:
    good = parse_bundle(enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    forged = sign_bundle(replace(good, site=site, counter=counter, signature=""), enroller.ca.sign_blob)
    with pytest.raises(BundleError, match="must be 1-64 "):
        apply_bundle(state_dir, forged.to_bytes())
    with pytest.raises(NotProvisioned):
        load_identity(state_dir)


def test_ca_signed_bundle_with_a_broken_broker_url_is_refused(
    state_dir: Path, box: InitResult, enroller: Enroller
) -> None:
    good = parse_bundle(enroller.enroll(csr_of(box), site="hn-bd-001", counter="c01").to_bytes())
    forged: Bundle = sign_bundle(replace(good, broker_url="mqtts://host:notaport", signature=""), enroller.ca.sign_blob)
    with pytest.raises(BundleError, match="broker"):
        apply_bundle(state_dir, forged.to_bytes())


@pytest.mark.parametrize("counter", ["x\n", "a/#", "c 1"])
def test_enroller_refuses_bad_names(box: InitResult, enroller: Enroller, counter: str) -> None:
    with pytest.raises(EnrollError):
        enroller.enroll(csr_of(box), site="hn-bd-001", counter=counter)


def test_pin_is_recorded_in_device_json(box: InitResult, enroller: Enroller) -> None:
    doc = json.loads((box.device.identity_dir / "device.json").read_text())
    assert doc["fleet_ca_sha256"] == enroller.ca.fingerprint


@pytest.mark.parametrize("spelling", ["{fp}", "sha256:{fp}", "{FP}", "SHA256 Fingerprint={colons}"])
def test_fingerprint_spellings_a_technician_may_copy(spelling: str) -> None:
    from idstation.provisioning.identity import normalise_fingerprint

    fp = "0123456789abcdef" * 4
    colons = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    assert normalise_fingerprint(spelling.format(fp=fp, FP=fp.upper(), colons=colons)) == fp
