"""Any citizen `card make-profile` can produce reads back verified, keyed from its QR alone."""

from __future__ import annotations

import pytest
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.sim.profiles import build_chip_image, make_profile, qr_text

SEEDS = range(1, 41)  # covers lifelong cards (MRZ expiry fillers), both laws, with and without old ID/spouse


@pytest.mark.parametrize("seed", SEEDS)
def test_a_random_citizen_reads_verified_from_its_qr(seed: int, card_on_reader, trust) -> None:
    profile = make_profile(seed)
    result = read_document(card_on_reader(build_chip_image(profile)), candidates_for(qr=qr_text(profile)),
                           ReadPolicy(), trust)  # fmt: skip
    assert result.verified, result.verification
    assert result.citizen is not None
    assert result.citizen["id_number"] == profile.id_number
    assert result.citizen["date_of_birth"] == profile.date_of_birth.isoformat()
    assert result.citizen["expiry_date"] == (profile.expiry_date.isoformat() if profile.expiry_date else None)
