"""Compact JSON text (``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``), written
faster where that is exact: the centre writes one per accepted event (its JSON line, its stored
header), on the thread that commits batches.

pydantic-core's serializer writes strings (escapes included), ints of any size, booleans, null,
objects and arrays exactly as json does, a few times faster; it writes some floats otherwise and
refuses a lone surrogate, so only a value made of the former goes to it, the rest to json
(tests/unit/mqtt/test_check_fast_paths.py compares both on generated and hostile values).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

__all__ = ["compact_json"]

# one encoder for every call (json.dumps with arguments builds a new one per call): the same text
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SCALARS = frozenset({str, int, bool, type(None)})  # exact types: no subclass, no float
_NODES = _SCALARS | {dict, list}
_MAX_PLAIN_DEPTH = 16  # deeper (or circular) goes to json, which words what it refuses


def compact_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, the same text or error.

    By pydantic-core's serializer when ``value`` is an object or array of only what both write
    alike: strings, ints, booleans, null, string-keyed objects and arrays (a float may be written
    otherwise: ``1e-07`` against ``1e-7``); a lone surrogate, which json writes and the serializer
    refuses, goes to json too, as does anything else."""
    if type(value) in _CONTAINERS and _plain(value, 0):
        try:
            return to_json(value).decode("utf-8")
        except PydanticSerializationError:
            pass
    return _COMPACT.encode(value)


def _plain(value: dict[str, Any] | list[Any], depth: int) -> bool:
    if type(value) is dict:
        if not set(map(type, value)) <= _STR_KEYS:
            return False
        values: Any = value.values()
    else:
        values = value
    kinds = set(map(type, values))
    if kinds <= _SCALARS:
        return True
    if not kinds <= _NODES or depth >= _MAX_PLAIN_DEPTH:
        return False
    return all(_plain(v, depth + 1) for v in values if type(v) is dict or type(v) is list)


_STR_KEYS = frozenset({str})
_CONTAINERS = frozenset({dict, list})
