"""The citizen-card QR payload parser."""

from __future__ import annotations

import contextlib
import datetime as dt
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.agent.errors import ParseError, QrError
from idstation.agent.qr.cccd import QrCitizen, parse_cccd

CCCD = "001090123456|012345678|Nguyễn Văn A|01011990|Nam|Phường Tân Định, Quận 1, TP. Hồ Chí Minh|15042021"
CAN_CUOC = "079303001234||Trần Thị Mỹ Linh|29022004|Nữ|Xã Ea Tiêu, Huyện Cư Kuin, Đắk Lắk|03082024"
JSON_KEYS = {"id_number", "old_id_number", "full_name", "date_of_birth", "gender", "permanent_address", "issue_date"}


def test_a_seven_field_payload_gives_every_field() -> None:
    citizen = parse_cccd(CCCD)
    assert citizen.id_number == "001090123456"
    assert citizen.old_id_number == "012345678"
    assert citizen.full_name == "Nguyễn Văn A"
    assert citizen.date_of_birth == dt.date(1990, 1, 1)
    assert citizen.gender == "Nam"
    assert citizen.permanent_address == "Phường Tân Định, Quận 1, TP. Hồ Chí Minh"
    assert citizen.issue_date == dt.date(2021, 4, 15)
    assert citizen.extras == ()


def test_an_empty_old_id_is_none_and_leap_day_births_parse() -> None:
    citizen = parse_cccd(CAN_CUOC)
    assert citizen.old_id_number is None
    assert citizen.date_of_birth == dt.date(2004, 2, 29)
    assert citizen.gender == "Nữ"


def test_to_json_has_exactly_the_cli_keys_with_iso_dates() -> None:
    data = parse_cccd(CCCD).to_json()
    assert set(data) == JSON_KEYS
    assert data["date_of_birth"] == "1990-01-01"
    assert data["issue_date"] == "2021-04-15"
    assert parse_cccd(CAN_CUOC).to_json()["old_id_number"] is None


@pytest.mark.parametrize("extra", ["|", "|abc", "|x|y|", "|2024-extra|Ấp 3"])
def test_extra_fields_are_kept_in_order(extra: str) -> None:
    citizen = parse_cccd(CCCD + extra)
    assert citizen.extras == tuple(extra.split("|")[1:])
    assert citizen.issue_date == dt.date(2021, 4, 15)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Nam", "Nam"),
        ("nam", "Nam"),
        ("NAM", "Nam"),
        (" Nam ", "Nam"),
        ("Nữ", "Nữ"),
        ("nữ", "Nữ"),
        ("NỮ", "Nữ"),
        ("Nu", "Nữ"),
        ("NU", "Nữ"),
        (unicodedata.normalize("NFD", "Nữ"), "Nữ"),
    ],
)
def test_gender_variants_are_normalised(raw: str, expected: str) -> None:
    assert parse_cccd(CCCD.replace("|Nam|", f"|{raw}|")).gender == expected


def test_decomposed_diacritics_are_normalised_to_nfc_and_kept() -> None:
    citizen = parse_cccd(unicodedata.normalize("NFD", CCCD))
    assert citizen.full_name == "Nguyễn Văn A"
    assert unicodedata.is_normalized("NFC", citizen.permanent_address)
    assert citizen.permanent_address == "Phường Tân Định, Quận 1, TP. Hồ Chí Minh"


def test_text_is_kept_exactly_including_inner_spacing_and_case() -> None:
    payload = CCCD.replace("Nguyễn Văn A", "NGUYỄN  văn A")
    assert parse_cccd(payload).full_name == "NGUYỄN  văn A"


def test_a_trailing_line_break_from_a_scanner_is_ignored() -> None:
    assert parse_cccd(CCCD + "\r\n").issue_date == dt.date(2021, 4, 15)


def test_utf8_bytes_are_accepted_and_other_bytes_are_a_qr_error() -> None:
    assert parse_cccd(CCCD.encode()).full_name == "Nguyễn Văn A"
    with pytest.raises(QrError, match="not UTF-8"):
        parse_cccd(CCCD.encode("utf-16"))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ("https://dichvucong.gov.vn/", "not a citizen card"),
        ("", "not a citizen card"),
        ("00109012345|012345678|A|01011990|Nam|X|15042021", "not a citizen card"),
        ("001090123456|012345678|Nguyễn Văn A|01011990|Nam", "truncated"),
        ("001090123456", "truncated"),
        (CCCD.replace("01011990", "31021990"), "not a valid date"),
        (CCCD.replace("01011990", "1990-01-01"), "not a ddmmyyyy date"),
        (CCCD.replace("15042021", "15041980"), "before the date of birth"),
        (CCCD.replace("|Nam|", "|Khác|"), "gender"),
        (CCCD.replace("012345678", "12AB"), "old ID"),
        (CCCD.replace("Nguyễn Văn A", " "), "full name"),
    ],
)
def test_bad_payloads_give_a_typed_error_that_names_the_problem(payload: str, why: str) -> None:
    with pytest.raises(QrError, match=why) as info:
        parse_cccd(payload)
    assert isinstance(info.value, ParseError)
    assert isinstance(info.value, ValueError)


def test_error_messages_and_repr_never_hold_the_citizen_data() -> None:
    citizen = parse_cccd(CCCD)
    for text in (repr(citizen), str(citizen)):
        assert "Nguyễn" not in text
        assert "001090123456" not in text
    bad = CCCD.replace("|Nam|", "|Nguyễn Secret|")
    with pytest.raises(QrError) as info:
        parse_cccd(bad)
    assert "Nguyễn" not in str(info.value)
    assert "001090123456" not in str(info.value)


def test_citizen_is_frozen_and_gives_the_can() -> None:
    citizen = parse_cccd(CCCD)
    assert citizen.can == "123456"
    with pytest.raises(AttributeError):
        citizen.full_name = "x"  # type: ignore[misc]


def test_misuse_with_a_non_text_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_cccd(12345)  # type: ignore[arg-type]


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_either_parses_or_raises_qr_error(text: str) -> None:
    try:
        result = parse_cccd(text)
    except QrError:
        return
    assert isinstance(result, QrCitizen)


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_either_parse_or_raise_qr_error(data: bytes) -> None:
    with contextlib.suppress(QrError):
        parse_cccd(data)


@given(st.integers(min_value=0, max_value=len(CCCD) - 1))
def test_every_truncation_of_a_real_payload_is_a_qr_error_or_a_shorter_valid_card(cut: int) -> None:
    prefix = CCCD[:cut]
    try:
        citizen = parse_cccd(prefix)
    except QrError:
        return
    # cutting inside the last field can still leave a well-formed card (address shortened)
    assert citizen.id_number == "001090123456"


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="|\r\n\x00"), max_size=20), min_size=0, max_size=4))
def test_any_extra_fields_round_trip(extras: list[str]) -> None:
    payload = "|".join([CCCD, *extras]) if extras else CCCD
    citizen = parse_cccd(payload)
    assert citizen.extras == tuple(unicodedata.normalize("NFC", e) for e in extras)


def test_a_parsed_qr_gives_the_chip_access_candidates_can_first() -> None:
    from idstation.agent.access import keys_from_qr
    from idstation.agent.emrtd.keys import CanKey, MrzKey

    keys = keys_from_qr(CCCD)
    assert keys[0] == CanKey("123456")
    mrz_keys = [k for k in keys if isinstance(k, MrzKey)]
    assert mrz_keys
    assert all(k.doc_number == "090123456" and k.date_of_birth == "900101" for k in mrz_keys)
    assert len(keys) <= 8  # bounded candidates, never a loop over guesses
