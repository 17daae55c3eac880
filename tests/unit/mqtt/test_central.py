"""The central core: only verified, decryptable, first-seen events from their own topics pass."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.central.dedupe import DedupeStore
from idstation.mqtt.central.listener import CentralProcessor, event_to_json_line
from idstation.mqtt.errors import EventRejected
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer, decode_frame, encode_frame
from idstation.mqtt.topics import topic_for

from .conftest import CITIZEN, PRIVATE

TOPIC = topic_for("hn-01", "c01", "identity")


@pytest.fixture
def central(world, tmp_path) -> CentralProcessor:
    return CentralProcessor(world.registry, world.central, DedupeStore(tmp_path / "state.sqlite"))


def _reason(central: CentralProcessor, topic: str, frame: bytes) -> str:
    with pytest.raises(EventRejected) as info:
        central.process(topic, frame)
    return info.value.reason


def test_a_genuine_identity_event_is_accepted_and_decrypted(world, central) -> None:
    event = world.device().build("identity", 1, private=PRIVATE)
    accepted = central.process(TOPIC, event.frame)
    assert accepted.event_id == event.event_id
    line = json.loads(event_to_json_line(accepted))
    assert line["citizen"] == CITIZEN
    assert line["verification"] == PRIVATE["verification"]
    for key in ("event_id", "device_id", "counter_id", "seq", "kind", "created_at"):
        assert key in line


def test_the_same_event_twice_is_a_duplicate(world, central) -> None:
    frame = world.device().build("identity", 1, private=PRIVATE).frame
    central.process(TOPIC, frame)
    assert _reason(central, TOPIC, frame) == "duplicate"


def test_listeners_sharing_a_state_file_share_duplicates(world, central, tmp_path) -> None:
    other = CentralProcessor(world.registry, world.central, DedupeStore(tmp_path / "state.sqlite"))
    frame = world.device().build("identity", 1, private=PRIVATE).frame
    central.process(TOPIC, frame)
    assert _reason(other, TOPIC, frame) == "duplicate"


def test_a_forged_signature_is_rejected(world, central) -> None:
    frame = bytearray(world.device().build("identity", 1, private=PRIVATE).frame)
    frame[-1] ^= 0xFF
    assert _reason(central, TOPIC, bytes(frame)) == "bad_signature"


def test_a_header_edited_in_transit_is_rejected(world, central) -> None:
    frame = world.device().build("read_failed", 1, reason="timeout").frame
    forged = frame.replace(b'"seq":1', b'"seq":9')
    assert _reason(central, topic_for("hn-01", "c01", "read_failed"), forged) == "bad_signature"


def test_an_unknown_device_is_rejected(world, central) -> None:
    stranger = world.device("box-9", enrol=False)
    assert _reason(central, TOPIC, stranger.build("identity", 1, private=PRIVATE).frame) == "unknown_device"


def test_a_revoked_device_is_rejected(world, central) -> None:
    builder = world.device()
    central.process(TOPIC, builder.build("identity", 1, private=PRIVATE).frame)
    world.registry.revoke("box-1")
    assert _reason(central, TOPIC, builder.build("identity", 2, private=PRIVATE).frame) == "revoked_device"


def test_a_device_publishing_under_another_counter_is_rejected(world, central) -> None:
    world.device("box-2", "hn-01", "c02")
    event = world.device().build("identity", 1, private=PRIVATE)
    assert _reason(central, topic_for("hn-01", "c02", "identity"), event.frame) == "wrong_topic"
    assert _reason(central, topic_for("hn-01", "c01", "heartbeat"), event.frame) == "wrong_topic"


def test_a_device_claiming_another_device_in_its_header_is_rejected(world, central) -> None:
    world.device("box-2", "hn-01", "c01")
    mallory_key = Ed25519PrivateKey.generate()
    world.registry.add_device("box-3", "hn-01", "c01", mallory_key.public_key())
    lying = EventBuilder("box-2", "hn-01", "c01", Signer(mallory_key), world.central.public_key())
    assert _reason(central, TOPIC, lying.build("identity", 1, private=PRIVATE).frame) == "wrong_topic"


def test_a_seal_for_another_centre_is_rejected(world, central) -> None:
    key = Ed25519PrivateKey.generate()
    world.registry.add_device("box-1", "hn-01", "c01", key.public_key())
    other = EventBuilder("box-1", "hn-01", "c01", Signer(key), X25519PrivateKey.generate().public_key())
    assert _reason(central, TOPIC, other.build("identity", 1, private=PRIVATE).frame) == "undecryptable"


def test_a_sealed_part_moved_to_another_event_does_not_open(world, central) -> None:
    key = Ed25519PrivateKey.generate()
    world.registry.add_device("box-1", "hn-01", "c01", key.public_key())
    builder = EventBuilder("box-1", "hn-01", "c01", Signer(key), world.central.public_key())
    a = decode_frame(builder.build("identity", 1, private=PRIVATE).frame)
    b = decode_frame(builder.build("identity", 2, private=PRIVATE).frame)
    spliced = encode_frame(b.header, a.sealed, Signer(key))  # even re-signed by the device key
    assert _reason(central, TOPIC, spliced) == "undecryptable"


def test_gaps_are_reported_and_filled_and_old_seqs_are_replays(world, central) -> None:
    builder = world.device()
    central.process(TOPIC, builder.build("identity", 1, private=PRIVATE).frame)
    gap = central.process(TOPIC, builder.build("identity", 4, private=PRIVATE).frame)
    assert gap.observation.verdict.value == "gap" and gap.observation.missing == (2, 3)
    late = central.process(TOPIC, builder.build("identity", 2, private=PRIVATE).frame)
    assert late.observation.verdict.value == "filled"
    assert central.store.gaps("box-1") == [("box-1", 3, 3)]
    assert _reason(central, TOPIC, builder.build("identity", 2, private=PRIVATE).frame) == "replay"


def test_backlog_arriving_after_a_live_event_is_not_a_replay(world, central) -> None:
    builder = world.device()
    central.process(TOPIC, builder.build("identity", 10, private=PRIVATE).frame)  # live first
    for seq in range(1, 10):
        central.process(TOPIC, builder.build("identity", seq, private=PRIVATE).frame)
    assert central.store.gaps("box-1") == []


@pytest.mark.parametrize("topic", ["idstation/v1/hn-01/c01", "other/v1/hn-01/c01/identity", "idstation/v1/a/b/nope"])
def test_foreign_topics_are_rejected(world, central, topic: str) -> None:
    assert _reason(central, topic, b"") == "bad_topic"


def test_garbage_payloads_are_rejected_as_malformed(central) -> None:
    for payload in (b"", b"IDS1", b"{}", b"IDS1\xff" + b"\x00" * 80):
        assert _reason(central, TOPIC, payload) == "malformed"


def test_telemetry_lines_carry_no_sealed_fields(world, central) -> None:
    frame = world.device().build("status", 0, state="online", info={"reader": "ok"}).frame
    line = json.loads(event_to_json_line(central.process(topic_for("hn-01", "c01", "status"), frame)))
    assert line["state"] == "online" and "citizen" not in line


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_any_payload_is_accepted_or_rejected_never_a_crash(central, data: bytes) -> None:
    with pytest.raises(EventRejected):
        central.process(TOPIC, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=1, max_value=255))
def test_any_altered_byte_of_a_genuine_frame_is_rejected(world, central, position: int, flip: int) -> None:
    frame = bytearray(world.device(f"box-{position % 7}").build("identity", 1, private=PRIVATE).frame)
    frame[position % len(frame)] ^= flip
    with pytest.raises(EventRejected):
        central.process(TOPIC, bytes(frame))


@pytest.mark.parametrize(
    "private",
    [
        {"source": "chip", "citizen": "not an object", "verification": {}},
        {"source": "smartphone", "citizen": {}, "verification": {}},
        {"source": "chip", "citizen": {}, "verification": {}, "guessed": "an attribute nobody defined"},
    ],
)
def test_an_identity_part_that_is_not_the_model_is_rejected_bad_private(world, central, private) -> None:
    builder = world.device()
    assert _reason(central, TOPIC, builder.build("identity", 1, private=private).frame) == "bad_private"
    genuine = builder.build("identity", 2, private=PRIVATE)
    assert central.process(TOPIC, genuine.frame).event_id == genuine.event_id


def test_the_received_header_text_goes_to_the_store_only_while_the_stored_header_is_that_text(world, central) -> None:
    # the PostgreSQL store may keep the received text as the jsonb header (no second serialisation);
    # once the centre adds its own chip verdict the stored header is a copy, and the text must not stand for it
    event = world.device().build("identity", 1, private=PRIVATE)
    plain = central.check(TOPIC, event.frame)
    assert plain.incoming.header_text == decode_frame(event.frame).header_bytes.decode("utf-8")
    assert json.loads(plain.incoming.header_text) == plain.incoming.header
    rechecking = CentralProcessor(world.registry, world.central, central.store, lambda _id, _p: {"passive": "verified"})
    checked = rechecking.check(TOPIC, event.frame)
    assert checked.incoming.header["centre_verification"] == {"passive": "verified"}
    assert checked.incoming.header_text is None
