from __future__ import annotations

import contextlib
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd.keys import (
    CanKey,
    MrzKey,
    candidates_from_mrz,
    candidates_from_qr,
    card_expiry,
    expiry_candidates,
)
from idstation.agent.emrtd.mrz import encode_td1, mrz_name, parse_mrz
from idstation.agent.errors import MrzError, ParseError

TD1_SPECIMEN = "I<UTOL898902C<3<<<<<<<<<<<<<<<6908061F9406236UTO<<<<<<<<<<<2ERIKSSON<<ANNA<MARIA<<<<<<<<<<"
TD3_SPECIMEN = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
VN_LINE1 = "IDVNM0930470641001093047064<<2"


@pytest.mark.parametrize(
    ("dob", "issued", "expected"),
    [
        # 2014 law: milestones 25, 40, 60
        (date(1990, 1, 1), date(2021, 4, 15), date(2030, 1, 1)),  # aged 31 → 40
        (date(2000, 6, 1), date(2021, 4, 15), date(2025, 6, 1)),  # aged 20 → 25
        (date(1998, 6, 1), date(2021, 6, 1), date(2038, 6, 1)),  # exactly 2 years before 25: inclusive → 40
        (date(1998, 6, 1), date(2021, 5, 31), date(2023, 6, 1)),  # one day earlier → 25
        (date(1963, 3, 10), date(2021, 3, 10), None),  # 58 exactly: no next milestone → lifelong
        (date(1955, 3, 10), date(2021, 3, 10), None),  # issued at 66 → lifelong
        (date(2000, 2, 29), date(2021, 4, 15), date(2025, 2, 28)),  # 29 Feb → 28 Feb in 2025
        (date(1996, 2, 29), date(2021, 4, 15), date(2036, 2, 29)),  # 2036 is a leap year
        # 2023 law (from 2024-07-01): milestones 14, 25, 40, 60; lifelong from 58
        (date(2015, 5, 5), date(2024, 7, 1), date(2029, 5, 5)),  # child: → 14
        (date(2011, 5, 5), date(2024, 8, 1), date(2036, 5, 5)),  # aged 13, within 2 years of 14 → 25
        (date(1985, 9, 9), date(2024, 9, 9), date(2045, 9, 9)),  # aged 39, within 2 years of 40 → 60
        (date(1966, 7, 1), date(2024, 7, 1), None),  # 58 on the day → lifelong
        (date(1967, 7, 2), date(2024, 7, 1), date(2027, 7, 2)),  # 56 → 60
    ],
)
def test_card_expiry_follows_the_law_of_the_issue_date(dob: date, issued: date, expected: date | None) -> None:
    assert card_expiry(dob, issued) == expected


def test_under_2014_law_a_child_card_runs_to_25() -> None:
    assert card_expiry(date(2010, 1, 2), date(2024, 6, 30)) == date(2035, 1, 2)


def test_law_change_picks_the_14_milestone_from_july_2024() -> None:
    dob = date(2013, 1, 2)  # aged 11 on both dates
    assert card_expiry(dob, date(2024, 6, 30)) == date(2038, 1, 2)
    assert card_expiry(dob, date(2024, 7, 1)) == date(2027, 1, 2)


def test_candidates_near_the_law_change_include_both_laws() -> None:
    candidates = expiry_candidates(date(2013, 1, 2), date(2024, 7, 1))
    assert candidates[0] == "270102"
    assert "380102" in candidates


def test_candidates_near_a_threshold_include_the_neighbour() -> None:
    candidates = expiry_candidates(date(1998, 6, 1), date(2021, 6, 5))
    assert candidates[0] == "380601"
    assert "230601" in candidates


def test_lifelong_candidates_are_bounded_fillers() -> None:
    candidates = expiry_candidates(date(1950, 1, 1), date(2021, 1, 1))
    assert candidates[:3] == ["991231", "<<<<<<", "000000"]
    assert len(candidates) <= 6


def test_29_february_also_tries_1_march() -> None:
    assert expiry_candidates(date(2000, 2, 29), date(2021, 4, 15)) == ["250228", "250301"]


def test_candidates_from_qr_put_the_can_first() -> None:
    keys = candidates_from_qr("001093047064", date(1993, 1, 1), date(2021, 4, 15))
    assert keys[0] == CanKey("047064")
    assert keys[1] == MrzKey("093047064", "930101", "330101")


@pytest.mark.parametrize("bad", ["12345", "00109304706a", "0010930470641", "００１０９３０４７０６４"])
def test_candidates_from_qr_reject_bad_id_without_echoing_it(bad: str) -> None:
    with pytest.raises(ParseError) as info:
        candidates_from_qr(bad, date(1993, 1, 1), date(2021, 4, 15))
    assert bad not in str(info.value)


def test_issue_before_birth_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        card_expiry(date(2000, 1, 1), date(1999, 1, 1))


def test_td1_specimen_parses_with_all_check_digits() -> None:
    mrz = parse_mrz(TD1_SPECIMEN)
    assert (mrz.format, mrz.document_number, mrz.date_of_birth, mrz.date_of_expiry) == (
        "TD1",
        "L898902C",
        "690806",
        "940623",
    )
    assert (mrz.surname, mrz.given_names, mrz.sex, mrz.nationality) == ("ERIKSSON", "ANNA MARIA", "F", "UTO")


def test_td3_specimen_parses_with_personal_number() -> None:
    mrz = parse_mrz(TD3_SPECIMEN)
    assert (mrz.document_number, mrz.date_of_birth, mrz.date_of_expiry) == ("L898902C3", "740812", "120415")
    assert mrz.optional_data_1 == "ZE184226B"


def test_vietnamese_td1_carries_the_12_digit_id() -> None:
    text = encode_td1(
        document_number="093047064",
        date_of_birth="930101",
        sex="M",
        date_of_expiry="330101",
        name=mrz_name("Nguyễn Văn Đức"),
        id_number="001093047064",
    )
    assert text.startswith(VN_LINE1)
    mrz = parse_mrz(text[:30] + "\n" + text[30:60] + "\n" + text[60:])
    assert (mrz.id_number, mrz.surname, mrz.given_names) == ("001093047064", "NGUYEN", "VAN DUC")
    assert candidates_from_mrz(text) == [MrzKey("093047064", "930101", "330101")]


def test_wrong_composite_check_digit_is_rejected_without_data() -> None:
    bad = TD1_SPECIMEN[:59] + "7" + TD1_SPECIMEN[60:]
    with pytest.raises(MrzError, match="composite") as info:
        parse_mrz(bad)
    assert "L898902C" not in str(info.value)
    assert "ERIKSSON" not in str(info.value)


def test_wrong_vietnamese_id_check_digit_is_rejected() -> None:
    text = encode_td1(
        document_number="093047064", date_of_birth="930101", sex="M", date_of_expiry="330101",
        name="NGUYEN<<AN", id_number="001093047064",
    )  # fmt: skip
    bad = text[:29] + "3" + text[30:]
    with pytest.raises(MrzError):
        parse_mrz(bad)


def test_repr_hides_the_fields() -> None:
    assert "ERIKSSON" not in repr(parse_mrz(TD1_SPECIMEN))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_garbage_text_raises_only_mrz_error(text: str) -> None:
    with contextlib.suppress(MrzError):
        parse_mrz(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<", min_size=88, max_size=90))
def test_mrz_alphabet_garbage_raises_only_mrz_error(text: str) -> None:
    with contextlib.suppress(MrzError):
        parse_mrz(text)
