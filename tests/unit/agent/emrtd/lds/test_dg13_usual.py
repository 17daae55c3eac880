"""DG13's fast path (the usual shape read by offsets, issue 13) gives the Dg13 the general parser
gives, or leaves the input to it: compared on every simulated citizen and on seeded mutations."""

from __future__ import annotations

import random

from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds import dg13
from idstation.agent.emrtd.lds.dg13 import encode_dg13, parse_dg13
from idstation.agent.errors import ParseError
from idstation.agent.sim.profiles import builtin_profiles, make_profile

MUTATIONS = 400


def _outcome(data: bytes, *, fast: bool) -> object:
    try:
        parsed = parse_dg13(data, fast=fast)
    except ParseError as exc:
        return type(exc).__name__, str(exc)
    return parsed.fields, parsed.raw, parsed.version


def _files() -> dict[str, bytes]:
    files = {name: encode_dg13(p.dg13_fields()) for name, p in builtin_profiles().items()}
    files.update({f"seed:{n}": encode_dg13(make_profile(n).dg13_fields()) for n in range(1, 21)})
    files["empty_value"] = encode_dg13([(1, "001090123456"), (2, ""), (13, ("", "B"))])
    files["unknown_field"] = encode_dg13([(1, "001090123456"), (16, "x"), (200, ("a", "b"))])
    files["long_text"] = encode_dg13([(9, "Phường Tân Định, " * 20)])
    return files


def test_every_simulated_dg13_takes_the_fast_path_and_parses_alike() -> None:
    for name, data in _files().items():
        assert dg13._usual(data) is not None, name
        assert _outcome(data, fast=True) == _outcome(data, fast=False), name


def _dg13_of(entries: list[bytes]) -> bytes:
    body = tlv.encode(0x02, b"\x01") + tlv.encode(0x06, dg13.UTF8_OID) + tlv.encode(0x31, b"".join(entries))
    return tlv.encode(0x6D, tlv.encode(0x30, body))


def _entry(number: bytes, *values: bytes) -> bytes:
    return tlv.encode(0x30, tlv.encode(0x02, number) + b"".join(values))


def test_other_shapes_are_left_to_the_general_parser() -> None:
    usual = encode_dg13([(1, "001090123456"), (2, "A")])
    inner = tlv.decode(usual).value
    others = {
        "padding": usual + b"\x00\x00",
        "non_minimal_length": b"\x6d\x81" + bytes([len(inner)]) + inner,
        "no_sequence_level": tlv.encode(0x6D, tlv.decode(inner).value),
        "printable_string": encode_dg13([(1, "x")]).replace(b"\x0c\x01x", b"\x13\x01x"),
        "twice": encode_dg13([(1, "a"), (1, "b")]),
        "bad_utf8": encode_dg13([(16, "é")]).replace("é".encode(), b"\xc3\x28"),
        "empty_number": _dg13_of([_entry(b"", tlv.encode(0x0C, b"x"))]),
        "long_number": _dg13_of([_entry(b"\x00\x00\x00\x00\x01", tlv.encode(0x0C, b"x"))]),
        "two_values": _dg13_of([_entry(b"\x0d", tlv.encode(0x0C, b"A"), tlv.encode(0x0C, b"B"))]),
        "not_an_entry": _dg13_of([tlv.encode(0x04, b"x"), _entry(b"\x01", tlv.encode(0x0C, b"1"))]),
        "deep_value": _dg13_of([_entry(b"\x0d", tlv.encode(0x30, tlv.encode(0x30, tlv.encode(0x0C, b"A"))))]),
    }
    for name, data in others.items():
        assert dg13._usual(data) is None, name
        assert _outcome(data, fast=True) == _outcome(data, fast=False), name


def test_mutated_dg13s_give_the_same_result_or_the_same_error_either_way() -> None:
    rng = random.Random("dg13-usual")
    sources = list(_files().values())
    answered = 0
    for _ in range(MUTATIONS):
        raw = bytearray(rng.choice(sources))
        for _edit in range(rng.randrange(1, 3)):
            at = rng.randrange(len(raw))
            kind = rng.randrange(4)
            if kind == 0:
                raw[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                raw[at] = rng.choice((0x00, 0x02, 0x04, 0x0C, 0x13, 0x30, 0x31, 0x80, 0x81, 0xC3, 0xFF))
            elif kind == 2:
                del raw[at]
            else:
                raw.insert(at, rng.randrange(256))
        data = bytes(raw)
        assert _outcome(data, fast=True) == _outcome(data, fast=False), data.hex()
        answered += dg13._usual(data) is not None
    assert 0 < answered < MUTATIONS
