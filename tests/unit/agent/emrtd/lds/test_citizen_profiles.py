from __future__ import annotations

import json
import unicodedata
from datetime import date
from pathlib import Path

import pytest
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.citizen import CITIZEN_KEYS, citizen_json, iso_date
from idstation.agent.emrtd.keys import CanKey, MrzKey, candidates_from_qr
from idstation.agent.emrtd.lds.dg1 import parse_dg1
from idstation.agent.emrtd.lds.dg2 import parse_dg2
from idstation.agent.emrtd.lds.dg13 import encode_dg13, parse_dg13
from idstation.agent.emrtd.passive_auth import verify_passive
from idstation.agent.emrtd.trust import TrustStore
from idstation.agent.emrtd.virtual_card.image import FID_CARD_ACCESS, FID_DG, FID_SOD
from idstation.agent.errors import ConfigError, ParseError
from idstation.agent.sim.profiles import (
    build_chip_image,
    builtin_profiles,
    image_for,
    load_profile,
    make_profile,
    qr_text,
    write_profile,
)

EXPECTED_KEYS = [
    "id_number", "full_name", "date_of_birth", "gender", "nationality", "ethnicity", "religion", "hometown",
    "permanent_address", "identifying_marks", "issue_date", "expiry_date", "father_name", "mother_name",
    "spouse_name", "old_id_number",
]  # fmt: skip


def test_citizen_json_has_exactly_the_contract_keys() -> None:
    image = image_for("an")
    citizen = citizen_json(image.files[FID_DG[13]], image.files[FID_DG[1]])
    assert list(citizen) == EXPECTED_KEYS == list(CITIZEN_KEYS)
    assert citizen["id_number"] == "001090123456"
    assert citizen["full_name"] == "Nguyễn Văn An"
    assert citizen["date_of_birth"] == "1990-03-15"
    assert citizen["issue_date"] == "2021-04-15"
    assert citizen["expiry_date"] == "2030-03-15"
    assert citizen["gender"] == "Nam"
    assert citizen["spouse_name"] == "Trần Thị Bích"
    assert citizen["old_id_number"] == "012345678"
    assert citizen["father_name"].startswith("Nguyễn ")


def test_lifelong_card_has_null_expiry() -> None:
    citizen = citizen_json(image_for("lifelong").files[FID_DG[13]])
    assert citizen["expiry_date"] is None
    assert citizen["date_of_birth"] == "1950-06-20"


def test_absent_and_empty_fields_are_null() -> None:
    citizen = citizen_json(image_for("no-spouse-no-old-id").files[FID_DG[13]])
    assert citizen["spouse_name"] is None
    assert citizen["old_id_number"] is None
    assert citizen_json(encode_dg13({2: "A"}))["religion"] is None


def test_text_is_nfc_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hương")
    citizen = citizen_json(encode_dg13({2: decomposed, 4: unicodedata.normalize("NFD", "Nữ")}))
    assert citizen["full_name"] == "Nguyễn Thị Hương"
    assert citizen["gender"] == "Nữ"


@pytest.mark.parametrize(
    ("text", "iso"),
    [("15/04/2021", "2021-04-15"), ("1/2/1950", "1950-02-01"), ("00/00/1950", "1950"), ("00/03/1950", "1950-03"),
     ("15042021", "2021-04-15"), ("Không thời hạn", None), ("", None), ("32/01/2000", None)],
)  # fmt: skip
def test_iso_dates(text: str, iso: str | None) -> None:
    assert iso_date(text) == iso


def test_make_profile_is_reproducible_and_realistic() -> None:
    assert make_profile(42) == make_profile(42)
    assert make_profile(42).face == make_profile(42).face
    ages_seen = set()
    for seed in range(40):
        profile = make_profile(seed)
        ident = profile.id_number
        assert len(ident) == 12 and ident.isdigit()
        century = 0 if profile.date_of_birth.year < 2000 else 2
        assert int(ident[3]) == century + (0 if profile.gender == "Nam" else 1)
        assert ident[4:6] == f"{profile.date_of_birth.year % 100:02d}"
        age = 2025 - profile.date_of_birth.year
        assert 13 <= age <= 91
        ages_seen.add(age // 20)
        assert profile.card_kind == ("cancuoc" if profile.issue_date >= date(2024, 7, 1) else "cccd")
    assert len(ages_seen) >= 3


def test_qr_text_has_the_seven_fields() -> None:
    fields = qr_text(builtin_profiles()["an"]).split("|")
    assert fields == ["001090123456", "012345678", "Nguyễn Văn An", "15031990", "Nam", fields[5], "15042021"]


def test_qr_candidates_open_the_profiles_chip() -> None:
    for profile in builtin_profiles().values():
        image = build_chip_image(profile)
        keys = candidates_from_qr(profile.id_number, profile.date_of_birth, profile.issue_date)
        assert keys[0] == CanKey(image.can)
        assert MrzKey(image.doc_number, image.date_of_birth, image.date_of_expiry) in keys


def test_profile_image_round_trip() -> None:
    profile = make_profile(7)
    image = build_chip_image(profile)
    assert parse_dg1(image.files[FID_DG[1]]).mrz.id_number == profile.id_number
    assert parse_dg2(image.files[FID_DG[2]]).image == profile.face
    assert parse_dg13(image.files[FID_DG[13]]).text(2) == profile.full_name
    assert FID_CARD_ACCESS in image.files


def test_bac_only_profile_has_no_card_access() -> None:
    image = image_for("bac-only")
    assert FID_CARD_ACCESS not in image.files
    assert image.faults.bac_only


def test_write_and_load_profile(tmp_path: Path) -> None:
    profile = builtin_profiles()["binh"]
    root = write_profile(profile, tmp_path / "binh")
    data = json.loads((root / "profile.json").read_text("utf-8"))
    assert data["card_kind"] == "cancuoc"
    assert (root / "qr.txt").read_text("utf-8").strip() == qr_text(profile)
    loaded, pki = load_profile(root)
    assert loaded == profile
    image = image_for(root)
    trust = TrustStore.from_dir(root)
    groups = {n: image.files[fid] for n, fid in FID_DG.items() if fid in image.files}
    assert verify_passive(image.files[FID_SOD], groups, trust).result == "ok"
    assert TrustStore.from_dir(root / "csca").certificates[0].subject == pki.csca_certificate.subject


def test_unknown_profile_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        image_for("nobody")
    with pytest.raises(ConfigError):
        load_profile(tmp_path)


def test_parser_error_from_a_real_payload_holds_no_personal_data() -> None:
    profile = builtin_profiles()["an"]
    dg13 = bytearray(build_chip_image(profile).files[FID_DG[13]])
    name = profile.full_name.encode()
    at = bytes(dg13).index(name)
    dg13[at + 1] = 0xFF  # invalid UTF-8 inside the name
    with pytest.raises(ParseError) as info:
        parse_dg13(bytes(dg13))
    message = str(info.value) + repr(info.value)
    for secret in (profile.full_name, profile.id_number, "Nguy", "001090"):
        assert secret not in message
    truncated = bytes(dg13[:-5])
    with pytest.raises(ParseError) as info2:
        parse_dg13(truncated)
    assert profile.id_number not in str(info2.value)


def test_reprs_hide_personal_data() -> None:
    profile = builtin_profiles()["an"]
    image = build_chip_image(profile)
    texts = [repr(profile), repr(parse_dg13(image.files[FID_DG[13]])), repr(parse_dg1(image.files[FID_DG[1]]))]
    assert not any(profile.id_number in t or "Nguyễn" in t or "NGUYEN" in t for t in texts)


def test_tlv_of_dg13_keeps_layout() -> None:
    outer = tlv.decode(image_for("an").files[FID_DG[13]], 0x6D)
    seq = outer.children()[0]
    assert [c.tag for c in seq.children()] == [0x02, 0x06, 0x31]
