"""Key candidates from the operator's input, and the personal-data-free inspection report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.inspect import inspect_card, render_text, shape
from idstation.agent.emrtd.keys import CanKey, MrzKey
from idstation.agent.errors import ParseError
from idstation.agent.sim.profiles import image_for, qr_text


def test_qr_gives_the_can_first_then_mrz_keys(profiles) -> None:
    an = profiles["an"]
    keys = candidates_for(qr=qr_text(an))
    assert keys[0] == CanKey(an.id_number[-6:])
    assert keys[1:] and all(isinstance(k, MrzKey) and k.doc_number == an.id_number[-9:] for k in keys[1:])


def test_can_must_be_six_digits() -> None:
    assert candidates_for(can="123456") == [CanKey("123456")]
    for bad in ("12345", "1234567", "12345a", "１２３４５６"):
        with pytest.raises(ParseError):
            candidates_for(can=bad)


def test_document_fields_make_one_mrz_key() -> None:
    assert candidates_for(doc_number="090123456", dob="900315", expiry="300315") == [
        MrzKey("090123456", "900315", "300315")
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"doc_number": "090123456", "dob": "9003", "expiry": "300315"},
        {"doc_number": "090123456", "dob": "900315"},
        {"doc_number": "0901234567890", "dob": "900315", "expiry": "300315"},
    ],
)
def test_incomplete_or_malformed_document_fields_are_parse_errors(fields: dict[str, str]) -> None:
    with pytest.raises(ParseError):
        candidates_for(**fields)


def test_garbage_qr_is_a_parse_error_without_the_text() -> None:
    with pytest.raises(ParseError) as info:
        candidates_for(qr="hello|world")
    assert "hello" not in str(info.value)


def test_no_key_at_all_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        candidates_for()


def _secrets(profile: Any, image: Any) -> list[str]:
    values = [
        profile.id_number, profile.id_number[-9:], profile.id_number[-6:], profile.full_name,
        profile.permanent_address, profile.date_of_birth.strftime("%d/%m/%Y"), profile.date_of_birth.isoformat(),
        image.date_of_birth, image.date_of_expiry, profile.father_name, profile.mother_name,
        profile.spouse_name, profile.old_id_number, profile.hometown, profile.identifying_marks,
        profile.full_name.split()[0].upper(),
    ]  # fmt: skip
    return [v for v in values if v]


@pytest.mark.parametrize("name", ["an", "lifelong", "field16"])
def test_inspect_report_holds_no_personal_data(card_on_reader, profiles, name: str) -> None:
    profile, image = profiles[name], image_for(name)
    report = inspect_card(card_on_reader(image), candidates_for(qr=qr_text(profile)))
    text = json.dumps(report, ensure_ascii=False) + render_text(report)
    for secret in _secrets(profile, image):
        assert secret not in text


def test_inspect_reports_capabilities(card_on_reader, profiles) -> None:
    report = inspect_card(card_on_reader(image_for("an")), candidates_for(can=profiles["an"].id_number[-6:]))
    assert report["access"] == "PACE-CAN"
    assert any(info.get("parameter_id") == 13 for info in report["card_access"])
    assert report["data_groups"]["DG13"]["readable"] and report["data_groups"]["DG13"]["size"] > 0
    assert report["dg13"]["fields"]["2"]["length"] == len(profiles["an"].full_name)
    assert report["mrz"]["format"] == "TD1" and report["mrz"]["expiry_kind"] == "digits"
    assert report["sod"]["hash_algorithm"] == "sha256"
    assert "TEST CSCA" in report["sod"]["document_signer"]["issuer"]
    assert report["chip_authentication"]["result"] == "ok"
    assert report["active_authentication"]["result"] == "ok"


def test_inspect_of_a_bac_only_card_has_no_card_access(card_on_reader, profiles) -> None:
    report = inspect_card(card_on_reader(image_for("bac-only")), candidates_for(qr=qr_text(profiles["bac-only"])))
    assert report["access"] == "BAC"
    assert report["card_access"] is None


def test_shape_masks_digits_and_letters_but_keeps_filler() -> None:
    assert (shape("300315"), shape("<<<<<<"), shape("AB12<")) == ("999999", "<<<<<<", "AA99<")
