"""The centre re-verifies the chip data an identity event carries (issue 13): a box's verdict is a
claim; a stolen box key cannot make the centre believe a citizen the chip data does not vouch for."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.recheck import ChipRecheckFailed, recheck_identity
from idstation.agent.emrtd.trust import TrustStore
from idstation.agent.sim.profiles import image_for
from idstation.agent.wiring import identity_private


@pytest.fixture(scope="module")
def sent(profiles, trust) -> dict[str, Any]:
    """The private part a box sends after reading the 'an' card (as the wire carries it)."""
    from idstation.agent.emrtd.virtual_card.chip import VirtualChip
    from idstation.hal.reader_sim import SimReader

    image = image_for("an")
    reader = SimReader()
    reader.insert(VirtualChip(image), atr=image.atr, extended_length=True, max_response=65536)
    conn = reader.wait_for_card(1.0)
    result = read_document(conn, candidates_for(can=profiles["an"].id_number[-6:]), ReadPolicy(), trust)
    return identity_private("verified", None, result).model_dump(mode="json", exclude_none=True)


def test_a_genuine_read_is_verified_by_the_centre(sent, trust) -> None:
    verdict = recheck_identity(sent, trust)
    assert verdict["result"] == "verified"
    assert "DG13" in verdict["data_groups"]


def test_a_citizen_the_chip_does_not_hold_is_a_chip_data_mismatch_naming_the_field_not_the_value(sent, trust) -> None:
    forged = {**sent, "citizen": {**sent["citizen"], "full_name": "Nguyễn Văn Giả"}}
    with pytest.raises(ChipRecheckFailed) as caught:
        recheck_identity(forged, trust)
    assert caught.value.reason == "chip_data_mismatch"
    assert "full_name" in str(caught.value)
    assert "Giả" not in str(caught.value) and sent["citizen"]["full_name"] not in str(caught.value)


def test_an_altered_data_group_fails_passive_authentication(sent, trust) -> None:
    dg13 = bytearray(base64.b64decode(sent["data_groups"]["DG13"]))
    dg13[-1] ^= 0x01
    forged = {**sent, "data_groups": {**sent["data_groups"], "DG13": base64.b64encode(bytes(dg13)).decode()}}
    with pytest.raises(ChipRecheckFailed) as caught:
        recheck_identity(forged, trust)
    assert caught.value.reason == "passive_auth_failed"


def test_chip_data_signed_under_a_csca_the_centre_does_not_trust_fails(sent) -> None:
    with pytest.raises(ChipRecheckFailed) as caught:
        recheck_identity(sent, TrustStore([]))
    assert caught.value.reason == "passive_auth_failed"


def test_an_event_without_ef_sod_is_marked_unverified_by_the_centre(sent, trust) -> None:
    qr_only = {"source": "qr_only", "citizen": sent["citizen"]}
    assert recheck_identity(qr_only, trust) == {"result": "unverified", "reason": "no EF.SOD"}
    assert recheck_identity({**sent, "ef_sod": None}, trust)["result"] == "unverified"
