"""The wire-format test vectors (docs/vectors/wire/, docs/wire-format.md) hold for our own code."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.listener import CentralProcessor, event_to_json_line
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import open_store
from idstation.mqtt.errors import EventRejected, ReceiptRejected
from idstation.mqtt.receipt import parse_receipt
from idstation.mqtt.seal import Signer, encode_frame, key_id_for, verify_openssl, verify_signature

VECTORS = Path(__file__).resolve().parents[3] / "docs" / "vectors" / "wire"
KEYS = json.loads((VECTORS / "keys.json").read_text(encoding="utf-8"))
CASES = json.loads((VECTORS / "events.json").read_text(encoding="utf-8"))["cases"]
RECEIPTS = json.loads((VECTORS / "receipts.json").read_text(encoding="utf-8"))


def _ed(entry: dict[str, str]) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(entry["private_seed_hex"]))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every event case processed in order by one fresh centre."""
    root = tmp_path_factory.mktemp("vectors")
    registry = Registry(root / "registry", create=True)
    device, revoked = KEYS["device"], KEYS["revoked_device"]
    registry.add_device(device["device_id"], device["site"], device["counter"], _ed(device).public_key())
    registry.add_device(revoked["device_id"], revoked["site"], revoked["counter"], _ed(revoked).public_key())
    registry.revoke(revoked["device_id"])
    central = X25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["central"]["private_hex"]))
    store = open_store(f"sqlite:///{root / 'state.sqlite'}")
    store.migrate()
    processor = CentralProcessor(registry, central, store)
    results: dict[str, Any] = {}
    for case in CASES:
        try:
            results[case["name"]] = processor.process(case["topic"], bytes.fromhex(case["frame_hex"]))
        except EventRejected as exc:
            results[case["name"]] = exc.reason
    results["_receipt_state"] = store.receipt_state(device["device_id"], device["key_id"])
    store.close()
    return results


@pytest.mark.parametrize("verify", [verify_signature, verify_openssl], ids=["default", "openssl"])
def test_both_ed25519_verifiers_give_every_vector_its_verdict(verify: Any, tmp_path: Path) -> None:
    # the checks before the store (steps 1-8b): libsodium (the centre) and OpenSSL (the box) alike
    registry = Registry(tmp_path / "registry", create=True)
    for name in ("device", "revoked_device"):
        entry = KEYS[name]
        registry.add_device(entry["device_id"], entry["site"], entry["counter"], _ed(entry).public_key())
    registry.revoke(KEYS["revoked_device"]["device_id"])
    central = X25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["central"]["private_hex"]))
    processor = CentralProcessor(registry, central, None, verify=verify)  # type: ignore[arg-type]
    for case in CASES:
        expected = case["expect"].get("reason")
        try:
            processor.check(case["topic"], bytes.fromhex(case["frame_hex"]))
            verdict = None
        except EventRejected as exc:
            verdict = exc.reason
        assert verdict == (None if expected in (None, "duplicate", "replay") else expected), case["name"]


def test_the_vector_keys_have_the_stated_key_ids() -> None:
    for name in ("device", "revoked_device", "unknown_device", "receipt"):
        assert key_id_for(_ed(KEYS[name]).public_key()) == KEYS[name]["key_id"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"]["result"] == "accepted"], ids=lambda c: c["name"])
def test_each_valid_frame_is_accepted_with_its_header_and_verdict(
    case: dict[str, Any], outcomes: dict[str, Any]
) -> None:
    event = outcomes[case["name"]]
    assert not isinstance(event, str), f"rejected: {event}"
    assert event.header == case["expect"]["header"]
    assert event.observation.verdict.value == case["expect"]["verdict"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"]["result"] == "rejected"], ids=lambda c: c["name"])
def test_each_invalid_frame_gets_its_reason(case: dict[str, Any], outcomes: dict[str, Any]) -> None:
    assert outcomes[case["name"]] == case["expect"]["reason"]


@pytest.mark.parametrize("case", [c for c in CASES if "hpke" in c["expect"]], ids=lambda c: c["name"])
def test_each_sealed_part_opens_to_the_stated_plaintext(case: dict[str, Any], outcomes: dict[str, Any]) -> None:
    expect, layout = case["expect"]["hpke"], case["expect"]["layout"]
    central = X25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["central"]["private_hex"]))
    sealed = bytes.fromhex(layout["sealed_hex"])
    assert sealed[:32].hex() == expect["enc_hex"]
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)  # as documented
    plaintext = suite.decrypt(sealed, central, info=bytes.fromhex(expect["info_hex"]))
    assert plaintext.decode("utf-8") == expect["plaintext_utf8"]
    assert outcomes[case["name"]].private == json.loads(expect["plaintext_utf8"])


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"]["result"] == "accepted"], ids=lambda c: c["name"])
def test_the_layout_and_the_deterministic_signature_are_as_documented(case: dict[str, Any]) -> None:
    frame, layout = bytes.fromhex(case["frame_hex"]), case["expect"]["layout"]
    kid_len = frame[4]
    (header_len,) = struct.unpack_from(">I", frame, 5 + kid_len)
    assert (frame[:4], kid_len, header_len) == (b"IDS1", layout["key_id_len"], layout["header_len"])
    assert json.loads(layout["header_utf8"]) == case["expect"]["header"]
    signer = Signer(_ed(KEYS["device"]))
    header = json.loads(layout["header_utf8"])
    assert encode_frame(header, bytes.fromhex(layout["sealed_hex"]), signer) == frame  # byte for byte
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(KEYS["device"]["public_hex"])).verify(
        frame[-64:], frame[: layout["signed_len"]]
    )


def test_the_receipt_vector_is_what_the_centre_owes_after_the_events(outcomes: dict[str, Any]) -> None:
    valid = RECEIPTS["valid"]
    receipt = parse_receipt(bytes.fromhex(valid["frame_hex"]), [_ed(KEYS["receipt"]).public_key()])
    expect = valid["expect"]
    assert (receipt.device_id, receipt.key_id, receipt.upto, sorted(receipt.above)) == (
        expect["device_id"],
        expect["key_id"],
        expect["upto"],
        expect["above"],
    )
    assert receipt.receipt_key_id == expect["receipt_key_id"]
    assert all(receipt.covers(s) for s in expect["covered"])
    assert not any(receipt.covers(s) for s in expect["not_covered"])
    assert outcomes["_receipt_state"] == (expect["upto"], expect["above"])


@pytest.mark.parametrize("case", RECEIPTS["invalid"], ids=lambda c: c["name"])
def test_each_invalid_receipt_gets_its_reason(case: dict[str, Any]) -> None:
    with pytest.raises(ReceiptRejected) as info:
        parse_receipt(bytes.fromhex(case["frame_hex"]), [_ed(KEYS["receipt"]).public_key()])
    assert info.value.reason == case["reason"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"]["result"] == "accepted"], ids=lambda c: c["name"])
def test_the_json_line_of_each_valid_frame_follows_its_schema(case: dict[str, Any], outcomes: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((VECTORS.parent / "json-line.schema.json").read_text(encoding="utf-8"))
    for full in (False, True):
        line = json.loads(event_to_json_line(outcomes[case["name"]], full=full))
        jsonschema.validate(line, schema, format_checker=jsonschema.FormatChecker())
        assert line["event_id"] == case["expect"]["header"]["event_id"]
