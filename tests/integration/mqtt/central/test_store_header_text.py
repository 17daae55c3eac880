"""PostgreSQL stores an event's received header text (``Incoming.header_text``) instead of a new
serialisation of the parsed header when jsonb reads both as the same value: the stored header
(its jsonb text as PostgreSQL writes it, and the dict read back) must be the same either way, on
generated headers written in many textual forms and on hostile ones (escapes, NUL, surrogates,
floats written as ``1.50`` or ``1E2``, ``-0``, big integers, nesting)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.central.store import Incoming, Store, open_store
from idstation.mqtt.central.store.pg_batch import _header_json, _json


@pytest.fixture(scope="module")
def pg(postgres_server: Any) -> Iterator[tuple[Store, str]]:
    postgres_server.start()
    url = postgres_server.create_database()
    store = open_store(url, migrate=True)
    yield store, url
    store.close()


def _strict(text: str) -> dict[str, Any]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(items)

    def no_constant(name: str) -> Any:
        raise ValueError(name)

    value = json.loads(text, object_pairs_hook=pairs, parse_constant=no_constant)
    assert isinstance(value, dict)
    return value


def _event(header: dict[str, Any], text: str | None) -> Incoming:
    event_id = str(uuid.uuid4())  # the column; the header copy is stored as it is
    return Incoming(
        event_id, "box-1", "k1", 1, "heartbeat", "hn-01", "c01", "2026-01-01T00:00:00Z", 1.5, header,
        b"frame:" + event_id.encode(), header_text=text,
    )  # fmt: skip


def _stored_pairs(store: Store, url: str, texts: list[str]) -> list[tuple[Any, Any, Any, Any]]:
    """Each text recorded twice (with its header_text, and without): both stored headers as
    PostgreSQL writes them and as the store reads them back."""
    events = []
    for text in texts:
        header = _strict(text)
        events += [_event(header, text), _event(header, None)]
    head = store.head()
    store.record(events)
    stored = {e.event_id: e.header for e in store.events_after(head, limit=10_000)}
    with psycopg.connect(url) as conn:
        ids = [e.event_id for e in events]
        rows = dict(conn.execute("SELECT event_id, header::text FROM events WHERE event_id = ANY(%s)", (ids,)))
    return [
        (rows[fast.event_id], rows[slow.event_id], stored[fast.event_id], stored[slow.event_id])
        for fast, slow in zip(events[::2], events[1::2], strict=True)
    ]


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 is not 1.0 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


HOSTILE = [
    '{"v":1,"seq":5,"kind":"read_failed","reason":"no_card"}',
    '{ "v" : 1 ,\n\t"seq":5 ,"clock_synced":true,"x":null }',
    '{"v":1.0,"seq":5}',  # a float the header schema lets through (strict Literal[1])
    '{"a":1.50,"b":1E2,"c":-0.0,"d":1e-7,"e":123456789012345678901234567890.5}',
    '{"a":-0,"b":123456789012345678901234567890,"c":-9223372036854775809}',
    '{"a":"x\\u0000y"}',  # NUL: jsonb refuses it, the header copy gets U+FFFD
    '{"a\\u0000":"y"}',
    '{"a":"\\ud83d\\ude00","b":"\\u00e9","c":"\\/\\"\\\\\\b\\f\\n\\r\\t"}',
    '{"a":"Trần Thị Hoàng Yến \U0001f600","b":"\u2028\u2029"}',
    '{"info":{"seq_floor":3,"n":[1,2.5,{"z":null}]},"v":1}',
    '{"z":1,"a":2,"m":{"b":1,"a":2}}',  # key order
    "{}",
]


def test_hostile_headers_are_stored_alike(pg: tuple[Store, str]) -> None:
    for fast_text, slow_text, fast, slow in _stored_pairs(*pg, HOSTILE):
        assert fast_text == slow_text
        assert _same(fast, slow)


def test_only_flat_headers_without_escapes_take_the_received_text() -> None:
    flat = '{"v":1,"seq":5,"kind":"read_failed","ok":true,"n":null}'
    assert _header_json(_event(_strict(flat), flat)) == flat
    for text in ('{"v":1.0}', '{"a":"\\u00e9"}', '{"info":{}}', '{"a":[1]}'):
        assert _header_json(_event(_strict(text), text)) == _json(_strict(text))
    assert _header_json(_event(_strict(flat), None)) == _json(_strict(flat))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_HEADERS = st.dictionaries(st.text(max_size=8), _VALUES, max_size=8)


@st.composite
def _texts(draw: st.DrawFn) -> str:
    """A header written as some sender might: compact or spaced, ASCII-escaped or not, keys sorted
    or not, and numbers in other spellings (``1.50``, ``1E2``, ``-0``)."""
    header = draw(_HEADERS)
    text = json.dumps(
        header,
        ensure_ascii=draw(st.booleans()),
        sort_keys=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")])),
    )
    spelling = draw(st.sampled_from(["", "trailing_zero", "exponent", "minus_zero"]))
    if spelling == "trailing_zero":
        text = text.replace(".5", ".50")
    elif spelling == "exponent":
        text = text.replace(".0,", "E0,").replace(".0}", "E0}")
    elif spelling == "minus_zero":
        text = text.replace(": 0,", ": -0,").replace(":0,", ":-0,")
    return text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_texts(), min_size=1, max_size=25))
def test_generated_headers_are_stored_alike(pg: tuple[Store, str], texts: list[str]) -> None:
    for fast_text, slow_text, fast, slow in _stored_pairs(*pg, texts):
        assert fast_text == slow_text
        assert _same(fast, slow)
