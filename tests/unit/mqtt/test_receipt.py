"""Central receipts: the signed format the box trusts before it deletes an event."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.mqtt.errors import ReceiptRejected, SealError
from idstation.mqtt.receipt import (
    MAX_ABOVE,
    Receipt,
    build_receipt,
    is_receipt_topic,
    parse_receipt,
    parse_receipt_keys,
    receipt_range,
    receipt_topic,
)
from idstation.mqtt.seal import Signer, encode_frame, key_id_for

KEY = Ed25519PrivateKey.generate()
SIGNER = Signer(KEY)
TRUSTED = [KEY.public_key()]
STREAM = "ed25519:0123456789abcdef"


def _header(**changes: object) -> dict[str, object]:
    header: dict[str, object] = {
        "v": 1,
        "kind": "receipt",
        "device_id": "box-1",
        "key_id": STREAM,
        "upto": 5,
        "above": [7, 9],
        "issued_at": "2026-12-03T09:30:00.123Z",
    }
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def _reason(payload: bytes, trusted: list = TRUSTED) -> str:
    with pytest.raises(ReceiptRejected) as info:
        parse_receipt(payload, trusted)
    return info.value.reason


def test_a_built_receipt_parses_back_to_what_the_centre_holds() -> None:
    receipt = parse_receipt(build_receipt("box-1", STREAM, 5, [9, 7], SIGNER), TRUSTED)
    assert (receipt.device_id, receipt.key_id, receipt.upto, receipt.above) == ("box-1", STREAM, 5, {7, 9})
    assert receipt.receipt_key_id == key_id_for(KEY.public_key())
    assert [s for s in range(12) if receipt.covers(s)] == [1, 2, 3, 4, 5, 7, 9]


def test_seq_zero_is_never_covered() -> None:
    receipt = Receipt("box-1", STREAM, 3, frozenset(), "2026-12-03T09:30:00Z", "k")
    assert not receipt.covers(0)


def test_a_receipt_of_any_trusted_key_is_accepted() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    payload = build_receipt("box-1", STREAM, 1, [], Signer(new))
    assert parse_receipt(payload, [old.public_key(), new.public_key()]).upto == 1


def test_a_receipt_signed_by_an_untrusted_key_is_unknown_key() -> None:
    payload = build_receipt("box-1", STREAM, 1, [], Signer(Ed25519PrivateKey.generate()))
    assert _reason(payload) == "unknown_key"


def test_a_receipt_claiming_a_trusted_key_id_with_another_key_is_bad_signature() -> None:
    forger = Signer(Ed25519PrivateKey.generate(), key_id=key_id_for(KEY.public_key()))
    assert _reason(build_receipt("box-1", STREAM, 100, [], forger)) == "bad_signature"


def test_a_changed_byte_is_bad_signature() -> None:
    payload = bytearray(build_receipt("box-1", STREAM, 5, [], SIGNER))
    index = bytes(payload).index(b'"upto":5') + 7
    payload[index] = ord("9")
    assert _reason(bytes(payload)) == "bad_signature"


def test_a_receipt_with_a_sealed_part_is_malformed() -> None:
    assert _reason(encode_frame(_header(), b"\x00" * 48, SIGNER)) == "malformed"


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 2},
        {"v": True},
        {"kind": "identity"},
        {"device_id": None},
        {"device_id": "bad/id"},
        {"key_id": ""},
        {"upto": -1},
        {"upto": True},
        {"upto": 2**53 + 1},
        {"upto": "5"},
        {"above": [4]},
        {"above": [9, 7]},
        {"above": [7, 7]},
        {"above": [7.5]},
        {"above": list(range(6, 6 + MAX_ABOVE + 1))},
        {"above": None},
        {"issued_at": "yesterday"},
        {"issued_at": None},
    ],
)
def test_a_signed_receipt_with_a_bad_header_is_bad_header(changes: dict[str, object]) -> None:
    assert _reason(encode_frame(_header(**changes), b"", SIGNER)) == "bad_header"


def test_unknown_header_keys_are_ignored_for_a_newer_centre() -> None:
    assert parse_receipt(encode_frame(_header(retained_until="x"), b"", SIGNER), TRUSTED).upto == 5


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_garbage_is_rejected_with_a_reason_never_another_error(data: bytes) -> None:
    assert _reason(data) in {"malformed", "unknown_key", "bad_signature", "bad_header"}


@given(
    upto=st.integers(0, 2**53 - MAX_ABOVE * 10),
    offsets=st.lists(st.integers(1, MAX_ABOVE * 10), max_size=MAX_ABOVE, unique=True),
    device=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
)
@settings(max_examples=60)
def test_round_trip(upto: int, offsets: list[int], device: str) -> None:
    above = [upto + o for o in offsets]
    receipt = parse_receipt(build_receipt(device, STREAM, upto, above, SIGNER), TRUSTED)
    assert (receipt.device_id, receipt.upto, receipt.above) == (device, upto, frozenset(above))


@pytest.mark.parametrize(
    ("upto", "above"),
    [(-1, []), (True, []), (5, [5]), (5, list(range(6, 6 + MAX_ABOVE + 1))), (5, ["7"])],
)
def test_building_an_impossible_receipt_is_a_bug(upto: object, above: list) -> None:
    with pytest.raises(TypeError):
        build_receipt("box-1", STREAM, upto, above, SIGNER)  # type: ignore[arg-type]


def test_the_header_on_the_wire_is_sorted_compact_json() -> None:
    payload = build_receipt("box-1", STREAM, 5, [7], SIGNER, issued_at="2026-12-03T09:30:00Z")
    header = (
        b'{"above":[7],"device_id":"box-1","issued_at":"2026-12-03T09:30:00Z","key_id":"'
        + STREAM.encode()
        + b'","kind":"receipt","upto":5,"v":1}'
    )
    assert header in payload
    assert json.loads(header)["upto"] == 5


# --- receipt_range -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_seq", "gaps", "expected"),
    [
        (0, [], (0, [])),
        (10, [], (10, [])),
        (10, [(3, 4), (7, 7)], (2, [5, 6, 8, 9, 10])),
        (5, [(1, 4)], (0, [5])),  # the first event of a stream arrived with seq 5
        (9, [(2, 3), (3, 5)], (1, [6, 7, 8, 9])),  # overlapping ranges
    ],
)
def test_receipt_range_from_stream_state(max_seq: int, gaps: list, expected: tuple) -> None:
    assert receipt_range(max_seq, gaps) == expected


def test_receipt_range_lists_the_lowest_512_held_numbers() -> None:
    upto, above = receipt_range(10**12, [(2, 2), (5_000, 6_000)])
    assert upto == 1
    assert above == list(range(3, 3 + MAX_ABOVE))


@given(
    max_seq=st.integers(0, 3000),
    gaps=st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 40)), max_size=12),
)
@settings(max_examples=200)
def test_receipt_range_covers_exactly_the_held_numbers(max_seq: int, gaps: list[tuple[int, int]]) -> None:
    ranges = [(lo, min(lo + width, max_seq)) for lo, width in gaps if lo <= max_seq]
    missing = {s for lo, hi in ranges for s in range(lo, hi + 1)}
    held = [s for s in range(1, max_seq + 1) if s not in missing]
    upto, above = receipt_range(max_seq, ranges)
    claimed = set(range(1, upto + 1)) | set(above)
    assert claimed <= set(held)  # never a number the centre does not hold
    assert len(above) <= MAX_ABOVE
    assert held[: upto + len(above)] == sorted(claimed)  # the lowest held numbers, none skipped


# --- keys and topics -----------------------------------------------------------------------------


def _pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_receipt_keys_file_holds_one_or_more_keys() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = parse_receipt_keys(_pem(a) + b"\n" + _pem(b))
    assert [key_id_for(k) for k in keys] == [key_id_for(a.public_key()), key_id_for(b.public_key())]


@pytest.mark.parametrize("text", [b"", b"not pem", _pem(X25519PrivateKey.generate())])
def test_a_receipt_keys_file_without_ed25519_keys_is_refused(text: bytes) -> None:
    with pytest.raises(SealError):
        parse_receipt_keys(text)


def test_receipt_topics() -> None:
    topic = receipt_topic("hn-01", "c01")
    assert topic == "idstation/v1/hn-01/c01/receipt"
    assert is_receipt_topic(topic)
    assert not is_receipt_topic("idstation/v1/hn-01/c01/identity")
    assert not is_receipt_topic("idstation/v1/provision/x/receipt/y")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(sorted(_header())), _JSON, max_size=7))
@settings(max_examples=300)
def test_any_signed_header_parses_or_is_bad_header(header: dict[str, object]) -> None:
    payload = encode_frame({**_header(), **header}, b"", SIGNER)
    try:
        receipt = parse_receipt(payload, TRUSTED)
    except ReceiptRejected as exc:
        assert exc.reason == "bad_header"
    else:
        assert receipt.upto >= 0
        assert all(s > receipt.upto for s in receipt.above)


def test_the_centres_subscriptions_match_every_event_topic_and_no_receipt_topic() -> None:
    from idstation.mqtt.events import KINDS
    from idstation.mqtt.topics import event_subscriptions, topic_for
    from paho.mqtt.client import topic_matches_sub

    subs = event_subscriptions()
    assert all(any(topic_matches_sub(s, topic_for("hn-01", "c01", k)) for s in subs) for k in KINDS)
    assert not any(topic_matches_sub(s, receipt_topic("hn-01", "c01")) for s in subs)
    assert event_subscriptions("g1") == [f"$share/g1/{s}" for s in subs]
