"""EF.DG13 on Vietnamese chips: the citizen's data (domain.md "DG13").

Layout as public parsers read it::

    6D L { 30 L { 02 01 01, 06 <1.0.10646.1.0.8 = UTF-8>, 31 L { 30 { 02 01 n, value } ... } } }

``value`` is a UTF8String, or for n = 13 (parents) and possibly 14 (spouse) a SEQUENCE of
UTF8Strings. Parsing is tolerant: any order, empty values, missing values, unknown numbers (kept
raw) and other string types (PrintableString, IA5String, BMPString) are accepted; a structure that is
not TLV is a ``TlvError``. Field texts are returned as stored (normalisation is the caller's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds.der import Item, NotUsual, der_items
from idstation.agent.errors import ParseError, TlvError

TAG_DG13 = 0x6D
UTF8_OID = bytes.fromhex("28D316010008")  # 1.0.10646.1.0.8
_STRING_TAGS = {0x0C: "utf-8", 0x04: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}
_MAX_DEPTH = 4

KNOWN_FIELDS = frozenset(range(1, 16))

Value = str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dg13:
    """Field number → text (or tuple of texts for nested values); ``raw`` keeps every value's TLV bytes."""

    fields: dict[int, Value]
    raw: dict[int, bytes] = field(default_factory=dict)
    version: int | None = None

    def __repr__(self) -> str:
        return f"Dg13(fields={sorted(self.fields)})"

    def text(self, number: int) -> str | None:
        """The field as one string (nested parts joined by ', '); None when absent."""
        value = self.fields.get(number)
        if value is None or isinstance(value, str):
            return value
        return ", ".join(part for part in value if part)

    def parts(self, number: int) -> tuple[str, ...]:
        value = self.fields.get(number)
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else value


def _string(item: tlv.Tlv, number: int) -> str:
    encoding = _STRING_TAGS.get(item.tag)
    if encoding is None:
        raise ParseError(f"DG13 field {number} has a value of unexpected tag {item.tag:X}")
    try:
        return item.value.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ParseError(f"DG13 field {number} is not valid text") from exc


def _value(item: tlv.Tlv, number: int, depth: int = 0) -> Value:
    if item.tag in (0x30, 0x31):
        if depth >= _MAX_DEPTH:
            raise ParseError(f"DG13 field {number} is nested too deeply")
        parts: list[str] = []
        for child in item.children():
            value = _value(child, number, depth + 1)
            parts.extend((value,) if isinstance(value, str) else value)
        return tuple(parts)
    return _string(item, number)


def _entries(outer: tlv.Tlv) -> tuple[list[tlv.Tlv], int | None]:
    """Find the SET of entries: normally 6D → 30 → 31; tolerate a missing SEQUENCE level."""
    version = None
    level = outer.children()
    sequence = next((c for c in level if c.tag == 0x30), None)
    if sequence is not None and all(c.tag != 0x31 for c in level):
        level = sequence.children()
    for child in level:
        if child.tag == 0x02 and child.value:
            version = int.from_bytes(child.value, "big")
    entry_set = next((c for c in level if c.tag == 0x31), None)
    if entry_set is None:
        raise TlvError("DG13 has no SET of fields (31)")
    return entry_set.children(), version


def parse_dg13(data: bytes, *, fast: bool = True) -> Dg13:
    """Parse Vietnamese EF.DG13 into field number → value.

    The usual shape is read by :func:`_usual` (the same Dg13, a fraction of the time); ``fast=False``
    reads every DG13 with the TLV objects below (the tests compare both)."""
    usual = _usual(bytes(data)) if fast else None
    if usual is not None:
        return usual
    outer = tlv.decode(bytes(data), TAG_DG13)
    entries, version = _entries(outer)
    fields: dict[int, Value] = {}
    raw: dict[int, bytes] = {}
    for entry in entries:
        if entry.tag != 0x30:
            continue  # not a field entry: ignore
        children = entry.children()
        if not children or children[0].tag != 0x02 or not 0 < len(children[0].value) <= 4:
            raise ParseError("DG13 entry does not start with its field number")
        number = int.from_bytes(children[0].value, "big")
        values = children[1:]
        raw[number] = b"".join(v.encode() for v in values)
        try:
            fields[number] = _entry_value(values, number)
        except ParseError:
            if number in KNOWN_FIELDS:
                raise
            # unknown field numbers keep their raw bytes only
    return Dg13(fields, raw, version)


def _entry_value(values: list[tlv.Tlv], number: int) -> Value:
    if not values:
        return ""
    if len(values) == 1:
        return _value(values[0], number)
    return tuple(p for v in values for p in _flatten(_value(v, number)))


def _flatten(value: Value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def _encode_value(value: Value) -> bytes:
    if isinstance(value, str):
        return tlv.encode(0x0C, value.encode("utf-8"))
    return tlv.encode(0x30, b"".join(tlv.encode(0x0C, part.encode("utf-8")) for part in value))


def encode_dg13(fields: dict[int, Value] | list[tuple[int, Value]]) -> bytes:
    """EF.DG13 in the layout above; entries in the given order (a dict: insertion order)."""
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    entries = b"".join(
        tlv.encode(0x30, tlv.encode(0x02, number.to_bytes(1 if number < 128 else 2, "big")) + _encode_value(value))
        for number, value in items
    )
    body = tlv.encode(0x02, b"\x01") + tlv.encode(0x06, UTF8_OID) + tlv.encode(0x31, entries)
    return tlv.encode(TAG_DG13, tlv.encode(0x30, body))


def _usual(data: bytes) -> Dg13 | None:
    """DG13 of the usual shape (``6D { 30 { 02 v, 06 oid, 31 { 30 { 02 n, value } ... } } }``, strict
    DER, each value a UTF8String or a SEQUENCE of them, no number twice) read by offsets, without
    TLV objects: the :class:`Dg13` :func:`parse_dg13` would build. None for anything else.
    The centre parses DG13 for every identity event it re-checks (issue 13)."""
    try:
        [outer] = der_items(data, 0, len(data))
        [sequence] = _inside(data, outer, TAG_DG13)
        version_item, _oid, entry_set = _inside(data, sequence, 0x30)
        if version_item[0] != 0x02 or _oid[0] != 0x06 or not 0 < version_item[3] - version_item[2] <= 4:
            return None
        fields: dict[int, Value] = {}
        raw: dict[int, bytes] = {}
        for entry in _inside(data, entry_set, 0x31):
            number_item, *values = _inside(data, entry, 0x30)
            if number_item[0] != 0x02 or not 0 < number_item[3] - number_item[2] <= 4 or len(values) > 1:
                return None
            number = int.from_bytes(data[number_item[2] : number_item[3]], "big")
            if number in fields:
                return None
            fields[number] = _usual_value(data, values[0]) if values else ""
            raw[number] = data[values[0][1] : values[0][3]] if values else b""
    except (NotUsual, ValueError, UnicodeDecodeError):  # ValueError: not the number of items unpacked
        return None
    return Dg13(fields, raw, int.from_bytes(data[version_item[2] : version_item[3]], "big"))


def _inside(data: bytes, item: Item, tag: int) -> list[Item]:
    if item[0] != tag:
        raise NotUsual
    return der_items(data, item[2], item[3])


def _usual_value(data: bytes, item: Item) -> Value:
    if item[0] == 0x0C:
        return data[item[2] : item[3]].decode("utf-8")
    parts = _inside(data, item, 0x30)
    if any(part[0] != 0x0C for part in parts):
        raise NotUsual
    return tuple(data[part[2] : part[3]].decode("utf-8") for part in parts)
