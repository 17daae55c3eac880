"""APDU encoding (ISO 7816-4 §5.1), status-word mapping and SecurityInfos parsing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.apdu import CommandApdu, is_extended, parse_response
from idstation.agent.emrtd.lds.security_infos import (
    ID_AA,
    ID_TA,
    ActiveAuthenticationInfo,
    TerminalAuthenticationInfo,
    UnknownSecurityInfo,
    decode_oid,
    encode_oid,
    parse_security_infos,
)
from idstation.agent.emrtd.sm import max_plain_response, response_overhead
from idstation.agent.emrtd.sw import error_for
from idstation.agent.errors import AccessDenied, ApduError, CardError, ParseError, SecureMessagingError

H = bytes.fromhex


@pytest.mark.parametrize(
    ("apdu", "encoded"),
    [
        (CommandApdu(0x00, 0x84, 0x00, 0x00, ne=8), "0084000008"),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=256), "00B0000000"),
        (CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011C")), "00A4020C02011C"),
        (CommandApdu(0x00, 0x88, 0x00, 0x00, H("0102"), ne=256), "00880000020102" + "00"),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=65536), "00B00000000000"),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=1000), "00B000000003E8"),
        (CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(300), ne=0), "00D6000000012C" + "00" * 300),
        (CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(300), ne=65536), "00D6000000012C" + "00" * 300 + "0000"),
    ],
)
def test_short_and_extended_encodings(apdu: CommandApdu, encoded: str) -> None:
    assert apdu.encode() == H(encoded)
    assert CommandApdu.decode(H(encoded)) == apdu
    assert is_extended(H(encoded)) == apdu.needs_extended()


def test_forced_extended_encoding_of_a_small_apdu() -> None:
    assert CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=4).encode(extended=True) == H("00B00000000004")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=4, max_size=0x20), st.binary(max_size=400), st.integers(0, 65536))
def test_any_apdu_round_trips(header: bytes, data: bytes, ne: int) -> None:
    apdu = CommandApdu(header[0], header[1], header[2], header[3], data, ne)
    assert CommandApdu.decode(apdu.encode()) == apdu


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_c_apdu_decodes_or_raises_apdu_error(raw: bytes) -> None:
    try:
        CommandApdu.decode(raw)
    except ApduError as exc:
        assert exc.sw == 0x6700


def test_r_apdu_without_status_word_is_a_card_error() -> None:
    with pytest.raises(CardError):
        parse_response(b"\x90")
    assert parse_response(H("01029000")) == (H("0102"), 0x9000)


def test_status_words_map_to_domain_errors() -> None:
    assert isinstance(error_for(0x6988), SecureMessagingError)
    assert isinstance(error_for(0x6300, authenticating=True), AccessDenied)
    assert isinstance(error_for(0x6982, authenticating=True), AccessDenied)
    plain = error_for(0x6982)
    assert isinstance(plain, ApduError)
    assert plain.sw == 0x6982


@pytest.mark.parametrize("block", [8, 16])
def test_largest_short_protected_response_fits_256(block: int) -> None:
    n = max_plain_response(256, block)
    assert n + response_overhead(n, block) <= 256
    assert n + 1 + response_overhead(n + 1, block) > 256
    assert n == (231 if block == 8 else 223)


def test_oids_round_trip() -> None:
    for oid in ("0.4.0.127.0.7.2.2.4.2.2", "2.23.136.1.1.5", "1.2.840.10045.2.1"):
        assert decode_oid(encode_oid(oid)) == oid


def test_security_infos_keep_aa_ta_and_unknown_entries() -> None:
    aa = ActiveAuthenticationInfo(ID_AA, 1, "0.4.0.127.0.7.1.1.4.1.3").encode()
    ta = tlv.encode(0x30, tlv.encode(0x06, encode_oid(ID_TA)) + H("020101"))
    unknown = tlv.encode(0x30, tlv.encode(0x06, encode_oid("1.2.3.4")) + H("0500"))
    infos = parse_security_infos(tlv.encode(0x31, aa + ta + unknown))
    assert infos.active_authentication == ActiveAuthenticationInfo(ID_AA, 1, "0.4.0.127.0.7.1.1.4.1.3")
    assert infos.terminal_authentication
    assert infos.of(TerminalAuthenticationInfo) == [TerminalAuthenticationInfo(ID_TA, 1)]
    assert infos.of(UnknownSecurityInfo) == [UnknownSecurityInfo("1.2.3.4", unknown)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_security_infos_raise_parse_error_only(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_security_infos(data)
