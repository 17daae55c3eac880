"""Encoder → parser round trips over generated values."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd.citizen import citizen_json
from idstation.agent.emrtd.keys import card_expiry, expiry_candidates
from idstation.agent.emrtd.lds.dg13 import encode_dg13, parse_dg13
from idstation.agent.emrtd.mrz import encode_td1, mrz_name, parse_mrz

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
FIELD_VALUE = st.one_of(TEXT, st.tuples(TEXT, TEXT))
DIGITS = st.text("0123456789", min_size=1, max_size=1)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(1, 200), FIELD_VALUE, max_size=20))
def test_dg13_round_trip(fields: dict[int, str | tuple[str, ...]]) -> None:
    assert parse_dg13(encode_dg13(fields)).fields == fields


@settings(max_examples=200, deadline=None)
@given(
    id_number=st.text("0123456789", min_size=12, max_size=12),
    dob=st.dates(date(1900, 1, 1), date(2099, 12, 31)),
    expiry=st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    sex=st.sampled_from("MF<"),
    name=st.text(st.characters(categories=("Lu", "Ll")), min_size=1, max_size=40),
)
def test_td1_round_trip(id_number: str, dob: date, expiry: date, sex: str, name: str) -> None:
    field = mrz_name(name)
    text = encode_td1(
        document_number=id_number[-9:], date_of_birth=dob.strftime("%y%m%d"), sex=sex,
        date_of_expiry=expiry.strftime("%y%m%d"), name=field, id_number=id_number,
    )  # fmt: skip
    mrz = parse_mrz(text)
    assert (mrz.document_number, mrz.id_number, mrz.sex) == (id_number[-9:], id_number, sex)
    assert (mrz.date_of_birth, mrz.date_of_expiry) == (dob.strftime("%y%m%d"), expiry.strftime("%y%m%d"))


@settings(max_examples=300, deadline=None)
@given(dob=st.dates(date(1930, 1, 1), date(2024, 12, 31)), issued=st.dates(date(2016, 1, 1), date(2030, 12, 31)))
def test_expiry_is_a_later_birthday_or_lifelong_and_first_candidate(dob: date, issued: date) -> None:
    if issued < dob:
        return
    expiry = card_expiry(dob, issued)
    candidates = expiry_candidates(dob, issued)
    assert 1 <= len(candidates) <= 10
    if expiry is None:
        assert candidates[0] == "991231"
        return
    assert expiry > issued
    assert (expiry.month, expiry.day) == (dob.month, dob.day) or (dob.month, dob.day, expiry.day) == (2, 29, 28)
    assert candidates[0] == expiry.strftime("%y%m%d")


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(1, 16), TEXT, max_size=16))
def test_citizen_json_always_has_the_16_keys(fields: dict[int, str]) -> None:
    assert len(citizen_json(encode_dg13(fields))) == 16
