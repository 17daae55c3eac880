"""Wiring: a real chip read classified into the flow's verdicts; the identity event's sealed part."""

from __future__ import annotations

from pathlib import Path

import pytest
from idstation.agent import flow
from idstation.agent.config import validate
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.errors import AccessDenied
from idstation.agent.sim import profiles
from idstation.agent.sim.profile_data.pki import UNKNOWN_CSCA_SEED, default_pki
from idstation.agent.wiring import ChipReader, identity_private
from idstation.hal.reader_sim import SimReader

AN = profiles.builtin_profiles()["an"]


def read(tmp_path: Path, image: object, qr: str) -> tuple[str, object]:
    cfg = validate({"state_dir": str(tmp_path), "csca_dir": None, "trust_test_csca": True})
    reader = SimReader()
    reader.insert(VirtualChip(image))
    conn = reader.wait_for_card(1)
    assert conn is not None
    return ChipReader(cfg)(conn, qr)


def test_a_good_card_is_verified(tmp_path: Path) -> None:
    verdict, result = read(tmp_path, profiles.build_chip_image(AN), profiles.qr_text(AN))
    assert verdict == flow.VERDICT_VERIFIED
    private = identity_private(flow.VERIFIED, profiles.qr_text(AN), result)
    assert private.source == "chip"
    assert private.citizen["id_number"] == AN.id_number
    assert private.qr["id_number"] == AN.id_number
    assert {"DG1", "DG13"} <= set(private.data_groups)
    assert private.ef_sod
    assert private.verification["status"] == "verified"


def test_a_card_from_an_unknown_csca_is_classified_unknown_csca(tmp_path: Path) -> None:
    image = profiles.build_chip_image(AN, default_pki(UNKNOWN_CSCA_SEED))
    verdict, _ = read(tmp_path, image, profiles.qr_text(AN))
    assert verdict == flow.VERDICT_UNKNOWN_CSCA


def test_a_tampered_data_group_fails_verification(tmp_path: Path) -> None:
    verdict, _ = read(tmp_path, profiles.build_chip_image(AN, tamper_dg=13), profiles.qr_text(AN))
    assert verdict == flow.VERDICT_FAILED


def test_another_citizens_qr_is_access_denied(tmp_path: Path) -> None:
    binh = profiles.builtin_profiles()["binh"]
    with pytest.raises(AccessDenied):
        read(tmp_path, profiles.build_chip_image(AN), profiles.qr_text(binh))


def test_an_unreadable_chip_gives_a_qr_only_identity() -> None:
    private = identity_private(flow.UNVERIFIED, profiles.qr_text(AN), None)
    assert private.source == "qr_only"
    assert private.citizen["full_name"] == AN.full_name
    assert private.verification == {"status": "unverified", "reason": "chip_unreadable"}


def _pki_whose_signer_is_named(common_name: str) -> object:
    """The test CSCA with a document signer whose subject is ``CN=common_name`` (a hostile issuer's text)."""
    import dataclasses

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    from idstation.agent.sim.profile_data.pki import DSC_VALIDITY, derive_key

    pki = default_pki()
    key = derive_key("dsc:named")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    dsc = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(pki.csca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(DSC_VALIDITY[0])
        .not_valid_after(DSC_VALIDITY[1])
        .sign(pki.csca_key, hashes.SHA256())
    )
    return dataclasses.replace(pki, dsc_key=key, dsc_certificate=dsc)


def test_a_signer_named_unknown_csca_cannot_turn_a_tampered_card_into_unknown_csca(tmp_path: Path) -> None:
    from idstation.agent.emrtd.verdict import Verdict

    image = profiles.build_chip_image(AN, _pki_whose_signer_is_named("unknown_csca"), tamper_dg=13)
    verdict, result = read(tmp_path, image, profiles.qr_text(AN))
    assert result.verification["passive"]["result"] == "failed"  # type: ignore[attr-defined]
    assert result.verdict is Verdict.VERIFICATION_FAILED  # type: ignore[attr-defined]
    assert verdict == flow.VERDICT_FAILED


def test_the_identity_part_is_the_wire_model_and_validates_on_the_centre(tmp_path: Path) -> None:
    from idstation.mqtt.events import IdentityPrivate, parse_private

    _, result = read(tmp_path, profiles.build_chip_image(AN), profiles.qr_text(AN))
    private = identity_private(flow.VERIFIED, profiles.qr_text(AN), result)  # type: ignore[arg-type]
    assert isinstance(private, IdentityPrivate)
    sent = private.model_dump(mode="json", exclude_none=True)
    assert parse_private(sent) == private


def test_the_chip_signs_a_challenge_bound_to_the_id_the_identity_event_will_carry(tmp_path: Path) -> None:
    import base64

    from idstation.agent.emrtd.active_auth import challenge_for, verify_active

    _, read_ = read(tmp_path, profiles.build_chip_image(AN), profiles.qr_text(AN))
    private = identity_private(flow.VERIFIED, profiles.qr_text(AN), read_)  # type: ignore[arg-type]
    signature = base64.b64decode(private.aa_signature or "")
    dg15 = read_.data_groups[15]  # type: ignore[attr-defined]
    assert verify_active(dg15, challenge_for(read_.event_id), signature).result == "ok"  # type: ignore[attr-defined]
