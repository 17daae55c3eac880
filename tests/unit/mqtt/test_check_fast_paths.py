"""The check thread's faster steps against the code they replaced (ee8c4e2), on the wire vectors and
on generated, mutated and hostile input: the same values, verdicts, reasons and messages."""

from __future__ import annotations

import json
import struct
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from idstation.mqtt import receipt, seal, topics
from idstation.mqtt.central import processor as processor_module
from idstation.mqtt.central.processor import AcceptedEvent, CentralProcessor, event_to_json_line
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import Outcome, Verdict
from idstation.mqtt.errors import EventRejected, SealError
from idstation.mqtt.events import KINDS
from idstation.mqtt.json_text import compact_json

VECTORS = Path(__file__).resolve().parents[3] / "docs" / "vectors" / "wire"
KEYS = json.loads((VECTORS / "keys.json").read_text(encoding="utf-8"))
CASES = json.loads((VECTORS / "events.json").read_text(encoding="utf-8"))["cases"]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the replaced code, as it was ----------------------------------------------------------------


def old_parse_topic(topic: str) -> tuple[str, str, str]:
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != topics.PREFIX:
        raise EventRejected("bad_topic", "not an idstation v1 event topic")
    site, counter, kind = parts[2:]
    if not (topics.valid_name(site) and topics.valid_name(counter)) or kind not in KINDS:
        raise EventRejected("bad_topic", "malformed idstation topic")
    return site, counter, kind


def old_decode_frame(data: bytes) -> seal.Frame:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("decode_frame takes bytes")
    data = bytes(data)
    if len(data) > seal.MAX_FRAME:
        raise SealError("frame too large")
    if len(data) < len(seal.MAGIC) + 1 + 4 + seal.SIGNATURE_LEN or not data.startswith(seal.MAGIC):
        raise SealError("not an idstation frame")
    pos = len(seal.MAGIC)
    kid_len = data[pos]
    pos += 1
    key_id_raw = data[pos : pos + kid_len]
    pos += kid_len
    if len(data) < pos + 4 + seal.SIGNATURE_LEN:
        raise SealError("truncated frame")
    (header_len,) = struct.unpack_from(">I", data, pos)
    pos += 4
    end = len(data) - seal.SIGNATURE_LEN
    if pos + header_len > end:
        raise SealError("truncated frame header")
    if header_len > seal.MAX_HEADER:
        raise SealError("frame header too large")
    try:
        key_id = key_id_raw.decode("ascii")
    except UnicodeDecodeError:
        raise SealError("frame key id is not ASCII") from None
    if not key_id.isprintable():
        raise SealError("frame key id is not printable")
    header_bytes = data[pos : pos + header_len]
    return seal.Frame(key_id, header_bytes, data[pos + header_len : end], data[:end], data[end:])


def old_is_receipt_topic(topic: str) -> bool:
    parts = topic.split("/")
    return len(parts) == 5 and "/".join(parts[:2]) == topics.PREFIX and parts[4] == receipt.RECEIPT_KIND


def old_iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def old_json_line(event: AcceptedEvent, *, full: bool = False) -> str:
    h = event.header
    line: dict[str, Any] = {
        k: h.get(k)
        for k in ("event_id", "device_id", "site", "counter_id", "boot_id", "seq", "kind", "created_at", "clock_synced")
    }
    line["key_id"] = h.get("key_id")
    line["received_at"] = old_iso(event.received_at) if event.received_at else None
    if event.kind == "identity":
        private = event.private or {}
        line["citizen"] = private.get("citizen")
        line["verification"] = private.get("verification")
        line["source"] = private.get("source")
        line["access"] = private.get("access")
        line["qr"] = private.get("qr")
        line["has_face"] = bool(private.get("face"))
        if "centre_verification" in h:
            line["centre_verification"] = h["centre_verification"]
        if full:
            for key in ("face", "data_groups", "ef_sod"):
                line[key] = private.get(key)
    elif event.kind == "read_failed":
        line["reason"], line["detail"] = h.get("reason"), h.get("detail", "")
    elif event.kind == "status":
        line["state"], line["info"] = h.get("state"), h.get("info", {})
    else:
        line["info"] = h.get("info", {})
    if event.observation is not None and event.observation.verdict is not Verdict.NEW:
        line["sequence"] = event.observation.verdict.value
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except EventRejected as exc:
        return "rejected", (exc.reason, str(exc))
    except SealError as exc:
        return "seal", str(exc)
    except ValueError:  # JSONDecodeError or not: the caller words every ValueError alike
        return "error", "ValueError"
    except RecursionError:
        return "error", "RecursionError"


# --- topics ----------------------------------------------------------------------------------------

_NAME_CHARS = st.sampled_from([*"aZ09._-/ \n+#$é", "\u0660", "\x00"])
_LEVEL = st.one_of(st.text(_NAME_CHARS, max_size=8), st.sampled_from(["site-1", "c.2", "x" * 128, "x" * 129, ""]))


@st.composite
def _topics(draw: st.DrawFn) -> str:
    levels = draw(st.lists(_LEVEL, min_size=0, max_size=7))
    if draw(st.booleans()):
        kind = draw(st.sampled_from([*KINDS, "Identity", "receipt", "status\n", ""]))
        levels = ["idstation", draw(st.sampled_from(["v1", "v2", "V1"])), *levels[:2], kind]
    return "/".join(levels)


@SETTINGS
@given(topic=st.one_of(_topics(), st.text(max_size=40)))
@example("idstation/v1/site-1/c-1/identity\n")
@example("idstation/v1/site-1/c-1/identity/")
@example("idstation/v1/site-1/-c/read_failed")
@example("/idstation/v1/s/c/status")
@example("idstation/v1/s/\u0660/heartbeat")
def test_parse_topic_is_the_old_parse(topic: str) -> None:
    assert _outcome(topics.parse_topic, topic) == _outcome(old_parse_topic, topic)


@SETTINGS
@given(topic=st.one_of(_topics(), _topics().map(lambda t: t.rsplit("/", 1)[0] + "/receipt"), st.text(max_size=40)))
@example("idstation/v1/s/c/receipt")
@example("idstation/v1/s/receipt")
@example("idstation/v1/s/c/d/receipt")
@example("receipt")
@example("/receipt")
def test_is_receipt_topic_is_the_old_test(topic: str) -> None:
    assert receipt.is_receipt_topic(topic) is old_is_receipt_topic(topic)


def test_parse_topic_takes_every_kind_and_long_names() -> None:
    for kind in KINDS:
        topic = f"idstation/v1/{'s' * 128}/c.0-_/{kind}"
        assert topics.parse_topic(topic) == old_parse_topic(topic) == ("s" * 128, "c.0-_", kind)


# --- strict JSON -----------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
_HOSTILE = [
    "",
    " ",
    "{}",
    ' {"a":1} ',
    '{"a":1}\n',
    '{"a":1} x',
    '{"a":1}{}',
    '\ufeff{"a":1}',
    '{"a":NaN}',
    '{"a":-Infinity}',
    '{"a":1,"a":2}',
    '{"a":{"b":1,"b":1}}',
    '{"a":1e400}',
    '{"a":"\x01"}',
    '{"a":"\\ud800"}',
    "[1,]",
    '{"a" :1,"a":2}',
    "\t[\r\n]\t",
    "nul",
    "[" * 50 + "]" * 50,
]


def _mutations(text: str) -> st.SearchStrategy[str]:
    edits = st.sampled_from([" ", "\n", "\t", ",", ":", '"', "\\", "{", "}", "[", "]", "NaN", '"a":1,', "\x00", "é"])
    return st.tuples(st.integers(0, len(text)), st.integers(0, 3), edits).map(
        lambda e: text[: e[0]] + e[2] + text[e[0] + e[1] :]
    )


@SETTINGS
@given(data=st.data())
def test_strict_decode_is_the_decoder(data: st.DataObject) -> None:
    value = data.draw(_JSON)
    text = data.draw(
        st.sampled_from(
            [
                json.dumps(value, separators=(",", ":"), ensure_ascii=False),
                json.dumps(value, indent=1),
                " " + json.dumps(value) + " \n",
            ]
        )
    )
    text = data.draw(st.one_of(st.just(text), _mutations(text), st.sampled_from(_HOSTILE)))
    assert _outcome(seal._strict_decode, text) == _outcome(seal._STRICT_JSON.decode, text)


@pytest.mark.parametrize("text", _HOSTILE)
def test_loads_bounded_refuses_and_takes_what_it_did(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = text.encode("utf-8", "surrogatepass")

    def load() -> Any:
        return seal.loads_bounded(data, max_bytes=64, max_depth=8, what="frame header")

    new = _outcome(load)
    monkeypatch.setattr(seal, "_strict_decode", seal._STRICT_JSON.decode)
    assert new == _outcome(load)


# --- the whole check and the JSON line, on the wire vectors -------------------------------------------


def _processor(root: Path) -> CentralProcessor:
    registry = Registry(root / "registry", create=True)
    for name in ("device", "revoked_device"):
        entry = KEYS[name]
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(entry["private_seed_hex"])).public_key()
        registry.add_device(entry["device_id"], entry["site"], entry["counter"], key)
    registry.revoke(KEYS["revoked_device"]["device_id"])
    central = X25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["central"]["private_hex"]))
    return CentralProcessor(registry, central, store=None)  # type: ignore[arg-type]


def _checks(processor: CentralProcessor, received_at: float) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for case in CASES:
        try:
            checked = processor.check(case["topic"], bytes.fromhex(case["frame_hex"]), received_at)
        except EventRejected as exc:
            out.append(("rejected", (exc.reason, str(exc))))
            continue
        out.append(("ok", (checked.topic, checked.header, checked.private, checked.incoming)))
    return out


def test_every_wire_vector_checks_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    processor = _processor(tmp_path)
    new = _checks(processor, 1_700_000_000.5)
    monkeypatch.setattr(processor_module, "parse_topic", old_parse_topic)
    monkeypatch.setattr(seal, "_strict_decode", seal._STRICT_JSON.decode)
    assert new == _checks(processor, 1_700_000_000.5)
    assert {verdict for verdict, _ in new} == {"ok", "rejected"}  # both kinds of outcome are compared


@pytest.mark.parametrize(
    "received_at", [0.0, 1_700_000_000.0, 1_700_000_000.9995, 1_700_000_000.999_999, 1_700_000_001.001, 1e9 + 0.25]
)
def test_json_lines_are_the_old_lines(received_at: float, tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    lines = 0
    for verdict, result in _checks(processor, received_at):
        if verdict != "ok":
            continue
        topic, header, private, _ = result
        for outcome in (None, Outcome(Verdict.NEW, cursor=1), Outcome(Verdict.GAP, (1, 2), 3, 4)):
            event = AcceptedEvent(header, topic, private, outcome, received_at)
            for full in (False, True):
                assert event_to_json_line(event, full=full) == old_json_line(event, full=full)
                lines += 1
    assert lines


_HEADER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=6),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@SETTINGS
@given(
    header=st.fixed_dictionaries(
        {"kind": st.sampled_from([*KINDS, "other"])},
        optional={
            k: _HEADER_VALUES for k in ("event_id", "seq", "reason", "detail", "state", "info", "centre_verification")
        },
    ),
    private=st.one_of(
        st.none(), st.fixed_dictionaries({}, optional={"citizen": _HEADER_VALUES, "face": _HEADER_VALUES})
    ),
    received_at=st.one_of(st.just(0.0), st.floats(0, 4e9)),
)
def test_json_lines_of_generated_events_are_the_old_lines(
    header: dict[str, Any], private: dict[str, Any] | None, received_at: float
) -> None:
    event = AcceptedEvent(header, "t", private, Outcome(Verdict.FILLED), received_at)
    assert event_to_json_line(event, full=True) == old_json_line(event, full=True)
    assert event_to_json_line(event) == old_json_line(event)


# --- frames --------------------------------------------------------------------------------------

_FRAMES = [bytes.fromhex(case["frame_hex"]) for case in CASES]


@st.composite
def _mutated_frames(draw: st.DrawFn) -> Any:
    frame = bytearray(draw(st.sampled_from(_FRAMES)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(frame)))
        edit = draw(st.sampled_from(["flip", "cut", "insert", "kid_len", "header_len"]))
        if edit == "flip" and at < len(frame):
            frame[at] ^= draw(st.integers(1, 255))
        elif edit == "cut":
            del frame[at:]
        elif edit == "insert":
            frame[at:at] = draw(st.binary(max_size=8))
        elif edit == "kid_len" and len(frame) > 4:
            frame[4] = draw(st.integers(0, 255))
        elif edit == "header_len" and len(frame) > 4 and len(frame) > 5 + frame[4] + 4:
            struct.pack_into(">I", frame, 5 + frame[4], draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from([bytes, bytearray, memoryview]))
    return kind(bytes(frame))


@SETTINGS
@given(data=st.one_of(_mutated_frames(), st.binary(max_size=90).map(lambda b: seal.MAGIC + b), st.text(max_size=4)))
@example(b"IDS1" + bytes([0]) + b"\x00\x00\x00\x00" + bytes(64))
@example(b"IDS1" + bytes([1]) + b"\x80" + b"\x00\x00\x00\x00" + bytes(64))
@example(b"IDS1" + bytes([1]) + b"\n" + b"\x00\x00\x00\x00" + bytes(64))
@example(b"IDS1" + bytes([0]) + struct.pack(">I", seal.MAX_HEADER + 1) + bytes(seal.MAX_HEADER + 65))
def test_decode_frame_is_the_old_split(data: Any) -> None:
    def split(fn: Any) -> Any:
        try:
            return fn(data)
        except (SealError, TypeError) as exc:
            return type(exc).__name__, str(exc)

    assert split(seal.decode_frame) == split(old_decode_frame)


# --- the JSON line's encoder -------------------------------------------------------------------------


class StrKind(str):
    pass


class IntKind(int):
    pass


_ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=6) | st.sampled_from(
    ["\ud800", "a\udfff", "\x00\x7f", "\u2028"]
)
_LINE_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**130)
    | st.floats()
    | st.sampled_from([1e-7, 1.5e-5, 1e16, 1e22, -0.0])
    | _ANY_TEXT
    | st.binary(max_size=2)
    | st.sampled_from([Verdict.GAP, OrderedDict(a=1), ("t", 1), frozenset(), StrKind("s"), IntKind(3)]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_ANY_TEXT, inner, max_size=3)
        | st.dictionaries(st.integers() | st.booleans() | st.none() | st.floats(), inner, max_size=2)
    ),
    max_leaves=10,
)


def _encoded(fn: Any, value: Any) -> tuple[str, str]:
    try:
        return "ok", fn(value)
    except Exception as exc:  # the same failure, as json words it
        return type(exc).__name__, str(exc)


@SETTINGS
@given(line=st.dictionaries(_ANY_TEXT, _LINE_VALUES, max_size=6) | _LINE_VALUES)
def test_the_line_encoder_writes_what_json_writes(line: Any) -> None:
    old = _encoded(lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")), line)
    assert _encoded(compact_json, line) == old


def test_the_line_encoder_on_deep_and_circular_lines() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(40):
        deep = {"d": [deep]}
    looped: dict[str, Any] = {"k": []}
    looped["k"].append(looped)
    floats = [{"f": 1e-7}, {"f": [1e16]}, {"f": {"g": float("nan")}}, {"f": -0.0}]
    for line in (deep, looped, *floats, {"s": "\ud800"}, {"b": b"x"}, {"t": ("a",)}, {"k": {1: 2}}):
        old = _encoded(lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")), line)
        assert _encoded(compact_json, line) == old
