"""Hostile frames at the central core: each one is a typed rejection with a reason, and the next
genuine event still passes (no RecursionError, no OverflowError, no transaction left open)."""

from __future__ import annotations

import json
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.dedupe import DedupeStore
from idstation.mqtt.central.listener import CentralProcessor
from idstation.mqtt.errors import EventRejected, SealError
from idstation.mqtt.events import parse_header
from idstation.mqtt.seal import MAGIC, Signer, _suite, decode_frame, encode_frame, seal_info

from .conftest import PRIVATE

TOPIC = "idstation/v1/hn-01/c01/identity"
DEEP = b"[" * 100_000


@pytest.fixture
def central(world, tmp_path) -> CentralProcessor:
    return CentralProcessor(world.registry, world.central, DedupeStore(tmp_path / "state.sqlite"))


def _reason(central: CentralProcessor, frame: bytes, topic: str = TOPIC) -> str:
    with pytest.raises(EventRejected) as info:
        central.process(topic, frame)
    return info.value.reason


def _raw_frame(key_id: bytes, header: bytes, sealed: bytes = b"", signer: Signer | None = None) -> bytes:
    body = MAGIC + bytes([len(key_id)]) + key_id + struct.pack(">I", len(header)) + header + sealed
    return body + (signer.sign(body) if signer else b"\0" * 64)


def _header(builder, number: int = 1, **changes) -> tuple[dict, bytes]:
    frame = decode_frame(builder.build("identity", number, private=PRIVATE).frame)
    return {**frame.header, **changes}, frame.sealed


def test_an_unsigned_deeply_nested_header_is_rejected_before_any_parsing(world, central) -> None:
    builder = world.device()
    kid = builder.signer.key_id.encode()
    assert _reason(central, _raw_frame(kid, DEEP)) in ("malformed", "bad_signature")
    assert _reason(central, _raw_frame(b"ed25519:0000000000000000", DEEP[:16_000])) == "unknown_device"
    genuine = builder.build("identity", 1, private=PRIVATE)
    assert central.process(TOPIC, genuine.frame).event_id == genuine.event_id


def test_a_signed_deeply_nested_header_is_a_bad_header(world, central) -> None:
    builder = world.device()
    deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
    frame = _raw_frame(builder.signer.key_id.encode(), deep, signer=builder.signer)
    assert _reason(central, frame) == "bad_header"


def test_a_signed_nested_sealed_part_is_rejected_and_the_next_event_passes(world, central) -> None:
    builder = world.device()
    header, _ = _header(builder)
    plaintext = b'{"source":"chip","citizen":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    sealed = _suite().encrypt(
        plaintext, world.central.public_key(), info=seal_info(header["device_id"], header["event_id"])
    )
    assert _reason(central, encode_frame(header, sealed, builder.signer)) == "undecryptable"
    genuine = builder.build("identity", 2, private=PRIVATE)
    assert central.process(TOPIC, genuine.frame).event_id == genuine.event_id


@pytest.mark.parametrize("seq", [2**63, 2**64 + 5, -1, 2**53 + 1])
def test_a_seq_out_of_range_is_a_bad_header_and_the_next_event_passes(world, central, seq: int) -> None:
    builder = world.device()
    header, sealed = _header(builder)
    header["seq"] = seq
    assert _reason(central, encode_frame(header, sealed, builder.signer)) == "bad_header"
    genuine = builder.build("identity", 1, private=PRIVATE)
    assert central.process(TOPIC, genuine.frame).event_id == genuine.event_id


@pytest.mark.parametrize(
    "changes",
    [
        {"created_at": "2099-01-01T00:00:00Z"},  # far in the future
        {"created_at": "2026-13-45T00:00:00Z"},  # not a date
        {"created_at": "1970-01-01T00:00:00Z"},  # before any box existed
        {"seq": "1"},  # a string is not a number
        {"seq": True},  # nor a boolean
        {"clock_synced": 1},
        {"boot_id": "b" * 65},
    ],
)
def test_header_fields_outside_the_schema_are_bad_headers(world, central, changes: dict) -> None:
    builder = world.device()
    header, sealed = _header(builder, **changes)
    assert _reason(central, encode_frame(header, sealed, builder.signer)) == "bad_header"


def test_duplicate_keys_and_nan_in_a_header_are_refused(world, central) -> None:
    builder = world.device()
    header, _ = _header(builder)
    text = json.dumps(header, separators=(",", ":"))
    kid = builder.signer.key_id.encode()
    twice = text[:-1] + ',"seq":7}'
    assert _reason(central, _raw_frame(kid, twice.encode(), signer=builder.signer)) == "bad_header"
    nan = text[:-1] + ',"x":NaN}'
    assert _reason(central, _raw_frame(kid, nan.encode(), signer=builder.signer)) == "bad_header"


def test_a_huge_header_is_malformed_before_its_signature_is_checked(world, central) -> None:
    kid = world.device().signer.key_id.encode()
    frame = _raw_frame(kid, b'{"a":"' + b"x" * 100_000 + b'"}')
    assert _reason(central, frame) == "malformed"


def test_the_dedupe_store_refuses_an_unstorable_seq_and_stays_usable(tmp_path) -> None:
    store = DedupeStore(tmp_path / "state.sqlite")
    with pytest.raises(EventRejected):
        store.observe("e-1", "box-1", "k", 2**63, True)
    assert store.observe("e-2", "box-1", "k", 1, True).accepted
    assert store.observe("e-3", "box-1", "k", 2, True).accepted


def test_a_header_from_a_clock_a_day_ahead_is_refused_but_an_hour_is_not(world) -> None:
    import datetime as dt

    builder = world.device()
    header, _ = _header(builder)
    now = dt.datetime.fromisoformat(header["created_at"].replace("Z", "+00:00"))
    parse_header(header, now=now - dt.timedelta(hours=1))
    with pytest.raises(SealError):
        parse_header(header, now=now - dt.timedelta(days=2))


def test_a_frame_with_another_signers_key_id_bytes_is_not_parsed_at_all(world, central) -> None:
    # a key id of non-printable bytes is malformed; nothing of the header is looked at
    stranger = Signer(Ed25519PrivateKey.generate())
    assert _reason(central, _raw_frame(b"\x00\x01bad", DEEP[:100], signer=stranger)) == "malformed"
