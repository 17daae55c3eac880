"""Event schema: ids, headers without personal data, the exported JSON Schema."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from idstation.mqtt.clock import uuid7
from idstation.mqtt.errors import SealError
from idstation.mqtt.events import event_json_schema, parse_header
from idstation.mqtt.seal import decode_frame

from .conftest import CITIZEN, PRIVATE

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "docs" / "events.schema.json"


def test_event_ids_are_time_ordered_uuid7() -> None:
    ids = [uuid7(ms) for ms in (1_000, 2_000, 3_000)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)


def test_every_event_carries_the_common_header(world) -> None:
    builder = world.device()
    event = builder.build("identity", 7, private=PRIVATE)
    header = decode_frame(event.frame).header
    for key in ("event_id", "device_id", "counter_id", "boot_id", "seq", "created_at", "clock_synced", "key_id", "v"):
        assert key in header
    assert header["seq"] == 7 and header["kind"] == "identity"
    parse_header(header)


def test_the_clear_header_holds_no_personal_data(world) -> None:
    frame = world.device().build("identity", 1, private=PRIVATE).frame
    for value in CITIZEN.values():
        assert value.encode() not in frame
        assert json.dumps(value).encode()[1:-1] not in frame


def test_only_identity_events_carry_a_sealed_part(world) -> None:
    builder = world.device()
    with pytest.raises(TypeError):
        builder.build("heartbeat", 1, private=PRIVATE)
    with pytest.raises(TypeError):
        builder.build("identity", 1)


def test_a_header_that_breaks_the_schema_is_refused_before_the_outbox(world) -> None:
    with pytest.raises(SealError, match="reason"):
        world.device().build("read_failed", 1, reason="has spaces and / slashes")


def test_an_invalid_header_error_names_fields_not_values() -> None:
    with pytest.raises(SealError) as info:
        parse_header({"kind": "identity", "device_id": "Nguyễn Văn Bình"})
    assert "Nguyễn" not in str(info.value)


def test_the_json_schema_in_docs_is_current() -> None:
    exported = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert exported == json.loads(json.dumps(event_json_schema())), (
        "docs/events.schema.json is stale: python -m idstation.mqtt.events > docs/events.schema.json"
    )
