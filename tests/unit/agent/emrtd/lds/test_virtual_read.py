"""Profiles → chip image → virtual chip → the terminal's whole read: the data comes back verified."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from idstation.agent.access import keys_from_qr
from idstation.agent.emrtd.citizen import citizen_json
from idstation.agent.emrtd.trust import TrustStore
from idstation.agent.emrtd.virtual_card.image import FID_DG, Faults
from idstation.agent.sim.profile_data.pki import default_pki
from idstation.agent.sim.profiles import CitizenProfile, build_chip_image, builtin_profiles, make_profile, qr_text

read = pytest.importorskip("idstation.agent.emrtd.read")
chip_module = pytest.importorskip("idstation.agent.emrtd.virtual_card.chip")
reader_sim = pytest.importorskip("idstation.hal.reader_sim")

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TRUST = TrustStore([default_pki().csca_certificate])


def _read(profile: CitizenProfile, **options: object) -> dict:  # type: ignore[type-arg]
    image = build_chip_image(profile, **options)  # type: ignore[arg-type]
    reader = reader_sim.SimReader()
    reader.insert(chip_module.VirtualChip(image), atr=image.atr)
    conn = reader.wait_for_card(1.0)
    keys = keys_from_qr(qr_text(profile))
    result = read.read_document(conn, keys, read.ReadPolicy(), TRUST, now=NOW)
    return result.to_json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_builtin_profile_reads_back_verified(name: str) -> None:
    profile = builtin_profiles()[name]
    out = _read(profile)
    assert out["verification"]["passive"]["result"] == "ok"
    assert out["verification"]["active"]["result"] == "ok"
    expected = citizen_json(build_chip_image(profile).files[FID_DG[13]])
    assert {k: out["citizen"][k] for k in expected} == expected


def test_bac_only_lifelong_card_with_an_unusual_filler_still_opens() -> None:
    profile = replace(builtin_profiles()["lifelong"], faults=Faults(bac_only=True), mrz_expiry="000000")
    out = _read(profile)
    assert out["access"] == "BAC"
    assert out["citizen"]["expiry_date"] is None


def test_tampered_chip_is_reported_failed() -> None:
    out = _read(make_profile(21), tamper_dg=13)
    assert out["verification"]["passive"]["result"] == "failed"
