"""One whole read on the in-process reader: access, files, checks, the JSON contract."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

import pytest
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.lds import build
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.virtual_card.image import FID_DG, FID_SOD, Faults
from idstation.agent.errors import AccessDenied, CardError, SecureMessagingError
from idstation.agent.sim.profiles import image_for, qr_text
from idstation.hal.errors import CardRemoved

TOP_KEYS = ["access", "citizen", "mrz", "verification", "data_groups", "apdus", "bytes", "elapsed_ms"]
CITIZEN_KEYS = [
    "id_number", "full_name", "date_of_birth", "gender", "nationality", "ethnicity", "religion", "hometown",
    "permanent_address", "identifying_marks", "issue_date", "expiry_date", "father_name", "mother_name",
    "spouse_name", "old_id_number",
]  # fmt: skip


def can_of(profile: Any) -> list[Any]:
    return candidates_for(can=profile.id_number[-6:])


def test_pace_can_read_is_verified_and_json_has_exactly_the_contract_keys(card_on_reader, profiles, trust) -> None:
    an = profiles["an"]
    result = read_document(card_on_reader(image_for("an")), can_of(an), ReadPolicy(), trust)
    doc = result.to_json()
    assert list(doc) == TOP_KEYS
    assert list(doc["citizen"]) == CITIZEN_KEYS
    assert set(doc["verification"]) == {"passive", "active", "chip"}
    assert (doc["access"], result.verified) == ("PACE-CAN", True)
    assert doc["citizen"]["id_number"] == an.id_number
    assert doc["citizen"]["date_of_birth"] == an.date_of_birth.isoformat()
    assert doc["citizen"]["gender"] == "Nam"
    assert len(doc["mrz"]) == 3 and all(len(line) == 30 for line in doc["mrz"])


def test_data_group_digests_are_sha256_of_the_raw_groups_kept_on_the_result(card_on_reader, profiles, trust) -> None:
    image = image_for("an")
    result = read_document(card_on_reader(image), can_of(profiles["an"]), ReadPolicy(), trust)
    assert set(result.data_groups) == {1, 13, 14, 15}
    assert result.to_json()["data_groups"] == {
        f"DG{n}": hashlib.sha256(data).hexdigest() for n, data in result.data_groups.items()
    }
    assert result.ef_sod == image.files[FID_SOD]


def test_qr_text_opens_the_chip_with_pace_can(card_on_reader, profiles, trust) -> None:
    keys = candidates_for(qr=qr_text(profiles["binh"]))
    result = read_document(card_on_reader(image_for("binh")), keys, ReadPolicy(), trust)
    assert (result.access, result.verified) == ("PACE-CAN", True)


def test_mrz_key_opens_the_chip_with_pace_mrz(card_on_reader, trust) -> None:
    image = image_for("an")
    keys = candidates_for(doc_number=image.doc_number, dob=image.date_of_birth, expiry=image.date_of_expiry)
    assert read_document(card_on_reader(image), keys, ReadPolicy(), trust).access == "PACE-MRZ"


def test_bac_only_card_is_read_with_bac_from_the_qr(card_on_reader, profiles, trust) -> None:
    keys = candidates_for(qr=qr_text(profiles["bac-only"]))
    result = read_document(card_on_reader(image_for("bac-only")), keys, ReadPolicy(), trust)
    assert (result.access, result.verified) == ("BAC", True)


def test_refused_pace_mrz_falls_back_to_bac(card_on_reader, trust) -> None:
    image = image_for("pace-mrz-refused")
    keys = candidates_for(doc_number=image.doc_number, dob=image.date_of_birth, expiry=image.date_of_expiry)
    assert read_document(card_on_reader(image), keys, ReadPolicy(), trust).access == "BAC"


def test_lifelong_card_has_null_expiry_date(card_on_reader, profiles, trust) -> None:
    keys = candidates_for(qr=qr_text(profiles["lifelong"]))
    result = read_document(card_on_reader(image_for("lifelong")), keys, ReadPolicy(), trust)
    assert result.citizen is not None and result.citizen["expiry_date"] is None


def test_tampered_data_group_fails_passive_authentication_but_data_is_returned(card_on_reader, profiles, trust) -> None:
    image = image_for("an", tamper_dg=13)
    result = read_document(card_on_reader(image), can_of(profiles["an"]), ReadPolicy(), trust)
    assert result.to_json()["verification"]["passive"]["result"] == "failed"
    assert not result.verified
    assert result.citizen is not None


def test_expired_signer_is_not_verified(card_on_reader, profiles, trust) -> None:
    image = image_for("an", expired_signer=True)
    result = read_document(card_on_reader(image), can_of(profiles["an"]), ReadPolicy(), trust)
    assert result.passive == "signer_expired"
    assert not result.verified


def test_card_under_an_untrusted_csca_is_unknown_csca(card_on_reader, profiles) -> None:
    from idstation.agent.emrtd.read import load_trust

    result = read_document(card_on_reader(image_for("an")), can_of(profiles["an"]), ReadPolicy(), load_trust(None))
    assert result.passive == "unknown_csca"
    assert not result.verified


def test_wrong_can_is_access_denied(card_on_reader, trust) -> None:
    with pytest.raises(AccessDenied):
        read_document(card_on_reader(image_for("an")), candidates_for(can="000000"), ReadPolicy(), trust)


def test_card_pulled_mid_read_raises_card_removed_and_the_next_card_reads(profiles, trust) -> None:
    from idstation.agent.emrtd.virtual_card.chip import VirtualChip
    from idstation.hal.reader_sim import SimReader

    reader = SimReader()
    reader.insert(VirtualChip(image_for("an", Faults(remove_after=10))))
    with pytest.raises(CardRemoved):
        read_document(reader.wait_for_card(1.0), can_of(profiles["an"]), ReadPolicy(), trust)
    assert reader.wait_for_removal(0.0)
    reader.insert(VirtualChip(image_for("an")))
    assert read_document(reader.wait_for_card(1.0), can_of(profiles["an"]), ReadPolicy(), trust).verified


def test_bad_response_mac_is_a_secure_messaging_error(card_on_reader, profiles, trust) -> None:
    with pytest.raises(SecureMessagingError):
        read_document(card_on_reader(image_for("an", Faults(bad_response_mac=True))), can_of(profiles["an"]))


def test_chip_dead_after_access_is_a_card_error(card_on_reader, profiles, trust) -> None:
    with pytest.raises(CardError):
        read_document(card_on_reader(image_for("an", Faults(dead_after_access=True))), can_of(profiles["an"]))


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(Faults(no_extended_length=True), id="no_extended_length"),
        pytest.param(Faults(no_sfi=True), id="no_sfi"),
        pytest.param(Faults(slow_ms=1), id="slow"),
    ],
)
def test_chip_quirks_still_read_and_verify(card_on_reader, profiles, trust, faults: Faults) -> None:
    result = read_document(card_on_reader(image_for("an", faults)), can_of(profiles["an"]), ReadPolicy(), trust)
    assert result.verified


def test_reader_without_extended_length_reads_with_short_apdus(card_on_reader, profiles, trust) -> None:
    conn = card_on_reader(image_for("an"), extended_length=False)
    assert read_document(conn, can_of(profiles["an"]), ReadPolicy(), trust).verified


def test_with_face_adds_the_face_image(card_on_reader, profiles, trust) -> None:
    an = profiles["an"]
    result = read_document(card_on_reader(image_for("an")), can_of(an), ReadPolicy(with_face=True), trust)
    face = result.to_json()["face"]
    assert face["mime"] == "image/jpeg"
    assert base64.b64decode(face["base64"]) == an.face
    assert 2 in result.data_groups


def test_without_face_there_is_no_face_key(card_on_reader, profiles, trust) -> None:
    result = read_document(card_on_reader(image_for("an")), can_of(profiles["an"]), ReadPolicy(), trust)
    assert "face" not in result.to_json()


def test_unparseable_dg13_signed_by_the_issuer_is_a_failed_check_not_a_crash(card_on_reader, profiles, trust) -> None:
    from idstation.agent.sim.profile_data.pki import default_pki

    image = image_for("an")
    groups = {n: image.files[FID_DG[n]] for n in (1, 2, 13, 14, 15)}
    groups[13] = bytes.fromhex("6D0A300802010106030000") + b"\xff"  # DG13 whose content is garbage
    pki = default_pki()
    files = dict(image.files) | {
        FID_DG[13]: groups[13],
        FID_SOD: build.encode_sod(groups, pki.dsc_certificate, pki.dsc_key),
    }
    result = read_document(card_on_reader(dataclasses.replace(image, files=files)), can_of(profiles["an"]), None, trust)
    doc = result.to_json()
    assert doc["verification"]["passive"]["result"] == "ok"
    assert doc["verification"]["data"]["result"] == "failed"
    assert doc["citizen"] is None
    assert not result.verified


def test_repr_holds_no_personal_data(card_on_reader, profiles, trust) -> None:
    an = profiles["an"]
    text = repr(read_document(card_on_reader(image_for("an")), can_of(an), ReadPolicy(), trust))
    for secret in (an.id_number, an.full_name, an.id_number[-9:], an.permanent_address):
        assert secret not in text


def test_clone_without_the_aa_key_fails_active_authentication(card_on_reader, profiles, trust) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    clone = dataclasses.replace(image_for("an"), aa_key=ec.generate_private_key(ec.SECP256R1()))
    result = read_document(card_on_reader(clone), can_of(profiles["an"]), ReadPolicy(), trust)
    assert (result.passive, result.verification["active"]["result"]) == ("ok", "failed")
    assert not result.verified


def test_clone_without_the_ca_key_fails_chip_authentication(card_on_reader, profiles, trust) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    clone = dataclasses.replace(image_for("an"), ca_key=ec.generate_private_key(ec.BrainpoolP256R1()))
    result = read_document(card_on_reader(clone), can_of(profiles["an"]), ReadPolicy(), trust)
    assert result.verification["chip"]["result"] == "failed"
    assert not result.verified


def test_policy_can_skip_active_and_chip_authentication(card_on_reader, profiles, trust) -> None:
    policy = ReadPolicy(active_auth=False, chip_auth=False)
    result = read_document(card_on_reader(image_for("an")), can_of(profiles["an"]), policy, trust)
    assert result.verification["active"] == {"result": "not_run"}
    assert result.verification["chip"] == {"result": "not_run"}
    assert result.verified
