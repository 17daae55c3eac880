"""tlv's hot paths, inlined for speed (issue 13), answer exactly as the plain code did: check_depth
as the walk over read_tag and read_length (the same None or TlvError), decode_one and encode as
read_tag + read_length and encode_tag + encode_length, on genuine files, deep nests and garbage."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.virtual_card.image import FID_SOD
from idstation.agent.errors import TlvError
from idstation.agent.sim.profiles import build_chip_image, builtin_profiles


def _reference(data: bytes, limit: int) -> None:
    """The walk as it was before it was inlined."""
    ends = [len(data)]
    pos = 0
    while pos < len(data):
        while len(ends) > 1 and pos >= ends[-1]:
            ends.pop()
        try:
            _tag, after_tag = tlv.read_tag(data, pos)
            length, start = tlv.read_length(data, after_tag)
        except TlvError:
            return
        if data[pos] & 0x20 and start + length <= ends[-1]:
            ends.append(start + length)
            if len(ends) - 1 > limit:
                raise TlvError(f"TLV nesting deeper than {limit} levels")
            pos = start
        else:
            pos = start + length


def _answer(check, data: bytes, limit: int) -> str | None:  # type: ignore[no-untyped-def]
    try:
        check(data, limit)
    except TlvError as exc:
        return str(exc)
    return None


def _nest(levels: int, tag: bytes = b"\x30") -> bytes:
    data = b"\x05\x00"
    for _ in range(levels):
        data = tag + tlv.encode_length(len(data)) + data
    return data


def test_genuine_and_deep_inputs_get_the_same_answer() -> None:
    sod = bytes(build_chip_image(builtin_profiles()["an"]).files[FID_SOD])
    cases = [sod, sod[:-7], _nest(32), _nest(33), _nest(200), _nest(40, b"\x7f\x61"), _nest(40, b"\x1f\x81\x81\x01")]
    for data in cases:
        for limit in (3, 32):
            assert _answer(tlv.check_depth, data, limit) == _answer(_reference, data, limit)
    assert _answer(tlv.check_depth, _nest(33), 32) is not None


def test_mutated_sods_get_the_same_answer() -> None:
    sod = bytes(build_chip_image(builtin_profiles()["an"]).files[FID_SOD])
    rng = random.Random("check-depth")
    for _ in range(500):
        raw = bytearray(sod)
        at = rng.randrange(len(raw))
        raw[at : at + rng.randrange(1, 4)] = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 4)))
        data = bytes(raw)
        assert _answer(tlv.check_depth, data, 12) == _answer(_reference, data, 12)
        assert _answer(tlv.check_depth, memoryview(data), 12) == _answer(_reference, data, 12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=6))
def test_garbage_gets_the_same_answer(data: bytes, limit: int) -> None:
    assert _answer(tlv.check_depth, data, limit) == _answer(_reference, data, limit)


def _decode_reference(data: bytes, pos: int) -> tuple[tlv.Tlv, int]:
    tag, pos = tlv.read_tag(data, pos)
    length, pos = tlv.read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TlvError(f"TLV {tag:X} claims {length} bytes, {len(data) - pos} present")
    return tlv.Tlv(tag, bytes(data[pos:end])), end


def _decoded(decode, data: bytes, pos: int) -> object:  # type: ignore[no-untyped-def]
    try:
        return decode(data, pos)
    except TlvError as exc:
        return str(exc)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=45))
def test_decode_one_answers_as_read_tag_and_read_length(data: bytes, pos: int) -> None:
    assert _decoded(tlv.decode_one, data, pos) == _decoded(_decode_reference, data, pos)
    assert _decoded(tlv.decode_one, memoryview(data), pos) == _decoded(_decode_reference, data, pos)


@given(st.integers(min_value=0, max_value=0xFFFFFF), st.binary(max_size=300))
def test_encode_is_encode_tag_and_encode_length(tag: int, value: bytes) -> None:
    assert tlv.encode(tag, value) == tlv.encode_tag(tag) + tlv.encode_length(len(value)) + value


def _all(decode, data: bytes) -> object:  # type: ignore[no-untyped-def]
    try:
        return decode(data)
    except TlvError as exc:
        return str(exc)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=60))
def test_decode_all_answers_as_iter_tlv(data: bytes) -> None:
    assert _all(tlv.decode_all, data) == _all(lambda d: list(tlv.iter_tlv(d)), data)
    assert _all(tlv.decode_all, memoryview(data)) == _all(lambda d: list(tlv.iter_tlv(d)), data)


def test_decode_all_reads_a_dg13_as_iter_tlv_does() -> None:
    dg13 = bytes(build_chip_image(builtin_profiles()["an"]).files[0x010D])
    value = tlv.decode(dg13).value
    assert tlv.decode_all(value) == list(tlv.iter_tlv(value))
    assert _all(tlv.decode_all, value[:-3]) == _all(lambda d: list(tlv.iter_tlv(d)), value[:-3])
