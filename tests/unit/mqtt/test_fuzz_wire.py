"""Fuzzing (hypothesis, bounded): the wire core's parsers, the central processor and the registry
loader answer every input with a value or a typed error — never a crash, never unbounded work.
``IDSTATION_FUZZ_EXAMPLES`` scales the example count."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.central.dedupe import DedupeStore
from idstation.mqtt.central.listener import CentralProcessor
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.errors import EventRejected, SealError
from idstation.mqtt.events import parse_header
from idstation.mqtt.seal import MAGIC, MAX_HEADER, Signer, decode_frame, encode_frame, json_depth, loads_bounded

from .conftest import PRIVATE, World

EXAMPLES = int(os.environ.get("IDSTATION_FUZZ_EXAMPLES", "150"))  # scales every fuzz run
# derandomize: the same examples on every run (a CI run is reproducible, never flaky); a wider
# search is a bigger IDSTATION_FUZZ_EXAMPLES
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
BRACKETY = st.text(alphabet='[]{}"\\:,0a ', max_size=400).map(str.encode)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@FUZZ
@given(JSON)
def test_the_depth_scan_agrees_with_the_parser(value: object) -> None:
    assert json_depth(json.dumps(value).encode()) == _depth(value)


@FUZZ
@given(st.binary(max_size=400) | BRACKETY)
def test_bounded_json_is_a_value_or_a_seal_error(data: bytes) -> None:
    with contextlib.suppress(SealError):
        loads_bounded(data, max_bytes=300, max_depth=4, what="fuzz")


@FUZZ
@given(st.binary(max_size=200) | BRACKETY, st.binary(max_size=64))
def test_any_header_bytes_give_a_header_or_a_seal_error(header: bytes, sealed: bytes) -> None:
    kid = b"ed25519:0000000000000000"
    body = MAGIC + bytes([len(kid)]) + kid + len(header).to_bytes(4, "big") + header + sealed
    frame = decode_frame(body + Signer(Ed25519PrivateKey.generate()).sign(body))
    assert len(frame.header_bytes) <= MAX_HEADER
    with contextlib.suppress(SealError):
        parse_header(frame.header)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("fuzz-world"))


@pytest.fixture(scope="module")
def setup(world, tmp_path_factory):
    builder = world.device()
    store = DedupeStore(tmp_path_factory.mktemp("fuzz-state") / "state.sqlite")
    genuine = decode_frame(builder.build("identity", 1, private=PRIVATE).frame)
    return CentralProcessor(world.registry, world.central, store), builder, genuine


@FUZZ
@given(st.sampled_from(sorted(["v", "kind", "event_id", "seq", "created_at", "key_id", "boot_id", "enc"])), JSON)
def test_a_signed_header_with_any_field_value_is_accepted_or_rejected(setup, field: str, value: object) -> None:
    processor, builder, genuine = setup
    frame = encode_frame({**genuine.header, field: value}, genuine.sealed, builder.signer)
    try:
        processor.process("idstation/v1/hn-01/c01/identity", frame)
    except EventRejected as exc:
        assert exc.reason != "internal_error", exc


@FUZZ
@given(st.dictionaries(st.text(max_size=12), JSON, max_size=12), st.binary(max_size=128))
def test_a_signed_frame_with_any_header_object_is_accepted_or_rejected(setup, header: dict, sealed: bytes) -> None:
    processor, builder, _ = setup
    try:
        processor.process("idstation/v1/hn-01/c01/identity", encode_frame(header, sealed, builder.signer))
    except EventRejected as exc:
        assert exc.reason != "internal_error", exc


@FUZZ
@given(st.binary(max_size=600) | BRACKETY, st.binary(max_size=300) | BRACKETY)
def test_the_registry_loader_skips_any_bad_record(tmp_path_factory, device_file: bytes, revoked_file: bytes) -> None:
    root: Path = tmp_path_factory.mktemp("fuzz-registry")
    try:
        writer = Registry(root, create=True)
        good = writer.add_device("box-1", "s", "c", Ed25519PrivateKey.generate().public_key())
        (root / "devices" / "box-2.json").write_bytes(device_file)
        (root / "revoked" / "box-3.json").write_bytes(revoked_file)
        reader = Registry(root)
        assert reader.by_key_id(good.key_id) == good
        assert reader.is_revoked("box-3")
        assert {r.device_id for r in reader.devices()} <= {"box-1", "box-2"}
    finally:
        shutil.rmtree(root, ignore_errors=True)
