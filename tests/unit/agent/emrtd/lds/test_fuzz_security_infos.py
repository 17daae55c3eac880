"""Fuzzing DG14 / EF.CardAccess SecurityInfos, chip-authentication keys and EF.SOD's PSS parameters.

Structure-aware generators (valid DER around hostile values: any-size integers, unknown OIDs,
explicit curves of any field) drive the parsers; only ``ParseError`` may come out, no explicit
curve is ever accepted unless it is one ICAO 9303 names, and each example is bounded (no
arithmetic on the chip's parameters). ``IDSTATION_FUZZ_EXAMPLES`` scales the example count.
"""

from __future__ import annotations

import contextlib
import os

from asn1crypto import keys
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd import ec, tlv
from idstation.agent.emrtd.chip_auth import choose, public_key_point
from idstation.agent.emrtd.lds.security_infos import (
    CA_ECDH_3DES,
    CA_ECDH_AES_128,
    ID_AA,
    ID_PK_DH,
    ID_PK_ECDH,
    ID_TA,
    PACE_ECDH_GM_AES_128,
    ChipAuthenticationPublicKeyInfo,
    encode_oid,
    parse_security_infos,
)
from idstation.agent.emrtd.pace import supported_pace
from idstation.agent.errors import ParseError

EXAMPLES = int(os.environ.get("IDSTATION_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OIDS = (CA_ECDH_3DES, CA_ECDH_AES_128, ID_AA, ID_PK_DH, ID_PK_ECDH, ID_TA, PACE_ECDH_GM_AES_128, "1.2.3.4")


def _der_int(value: int) -> bytes:
    return tlv.encode(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


hostile_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([-1, 0, 2**31, 2**63, 2**4000]))


@st.composite
def security_info(draw: st.DrawFn) -> bytes:
    oid = draw(st.sampled_from(OIDS))
    body = tlv.encode(0x06, encode_oid(oid))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["int", "seq", "oid", "junk"]))
        if kind == "int":
            body += _der_int(draw(hostile_ints))
        elif kind == "seq":
            body += tlv.encode(0x30, draw(st.binary(max_size=60)))
        elif kind == "oid":
            body += tlv.encode(0x06, encode_oid(draw(st.sampled_from(OIDS))))
        else:
            body += draw(st.binary(max_size=20))
    return tlv.encode(0x30, body)


@FUZZ
@given(st.lists(security_info(), max_size=6), st.booleans())
def test_security_infos_with_hostile_values_raise_only_parse_errors(infos: list[bytes], dg14: bool) -> None:
    data = tlv.encode(0x31, b"".join(infos))
    if dg14:
        data = tlv.encode(0x6E, data)
    try:
        parsed = parse_security_infos(data)
    except ParseError:
        return
    supported_pace(parsed)
    choice = choose(parsed)
    if choice is not None:
        assert choice[0].key_id is None or 0 <= choice[0].key_id < 2**31
        with contextlib.suppress(ParseError):
            public_key_point(choice[1])


@st.composite
def explicit_domain(draw: st.DrawFn) -> bytes:
    named = draw(st.sampled_from(list(ec.STANDARD_PARAMETERS.values())))
    p = draw(st.one_of(st.just(named.p), st.integers(0, 2**600), st.just(2**9689 - 1), st.just(named.p + 1)))
    size = max(1, (p.bit_length() + 7) // 8)
    a = draw(st.one_of(st.just(named.a), st.integers(0, 2**300)))
    b = draw(st.one_of(st.just(named.b), st.integers(0, 2**300)))
    gx, gy = draw(st.one_of(st.just(named.g), st.tuples(st.integers(0, 2**300), st.integers(0, 2**300))))
    n = draw(st.one_of(st.just(named.n), st.integers(-5, 2**300)))
    cofactor = draw(st.sampled_from([1, 0, -1, 2, 2**64]))
    field = draw(st.sampled_from(["prime_field", "characteristic_two_field"]))

    def enc(v: int) -> bytes:
        return (v % 2 ** (8 * size)).to_bytes(size, "big")

    field_id = (
        {"field_type": "prime_field", "parameters": p}
        if field == "prime_field"
        else {"field_type": "characteristic_two_field",
              "parameters": keys.CharacteristicTwo({"m": 163, "basis": "tp_basis", "parameters": 7})}
    )  # fmt: skip
    domain = keys.SpecifiedECDomain(
        {"version": "ecdpVer1", "field_id": field_id, "curve": {"a": enc(a), "b": enc(b)},
         "base": b"\x04" + enc(gx) + enc(gy), "order": n, "cofactor": cofactor}
    )  # fmt: skip
    algorithm = {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="specified", value=domain)}
    point = draw(st.one_of(st.just(named.encode_point(named.g)), st.binary(max_size=2 * size + 1)))
    return bytes(keys.PublicKeyInfo({"algorithm": algorithm, "public_key": point}).dump())


@FUZZ
@given(explicit_domain())
def test_explicit_curves_are_accepted_only_when_they_are_icao_curves(spki: bytes) -> None:
    try:
        curve, point = public_key_point(ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, spki))
    except ParseError:
        return
    assert curve in ec.STANDARD_PARAMETERS.values()
    assert curve.contains(point)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_as_a_chip_authentication_key(spki: bytes) -> None:
    with contextlib.suppress(ParseError):
        public_key_point(ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, spki))


@FUZZ
@given(hostile_ints)
def test_any_pss_salt_length_parses_in_range_or_raises_parse_error(salt: int) -> None:
    from idstation.agent.emrtd.lds.sod import MAX_PSS_SALT, parse_sod

    from tests.unit.agent.emrtd.lds.test_hostile_sod import _with_salt, pss_sod_bytes

    try:
        sod = parse_sod(_with_salt(pss_sod_bytes(), salt))
    except ParseError:
        return
    assert sod.pss_salt_length is not None
    assert 0 <= sod.pss_salt_length <= MAX_PSS_SALT
