"""Wiring: a real chip read classified into the flow's verdicts; the identity event's sealed part."""

from __future__ import annotations

from pathlib import Path

import pytest
from idstation.agent import flow
from idstation.agent.config import validate
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.errors import AccessDenied
from idstation.agent.sim import profiles
from idstation.agent.sim.profile_data.pki import default_pki
from idstation.agent.sim.simulation import UNKNOWN_CSCA_SEED
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
    assert private["source"] == "chip"
    assert private["citizen"]["id_number"] == AN.id_number
    assert private["qr"]["id_number"] == AN.id_number
    assert {"DG1", "DG13"} <= set(private["data_groups"])
    assert private["ef_sod"]
    assert private["verification"]["status"] == "verified"


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
    assert private["source"] == "qr_only"
    assert private["citizen"]["full_name"] == AN.full_name
    assert private["verification"] == {"status": "unverified", "reason": "chip_unreadable"}
