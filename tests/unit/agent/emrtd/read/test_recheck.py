"""The centre re-verifies the chip data an identity event carries (issue 13): a box's verdict is a
claim; a stolen box key cannot make the centre believe a citizen the chip data does not vouch for,
nor that a card was present for an event it was not read for."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.active_auth import challenge_for
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.recheck import ChipRecheckFailed, recheck_identity
from idstation.agent.emrtd.trust import TrustStore
from idstation.agent.sim.profiles import image_for
from idstation.agent.wiring import identity_private
from idstation.mqtt.clock import uuid7

EVENT_ID = uuid7()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def sent(profiles, trust) -> dict[str, Any]:
    """The private part a box sends for EVENT_ID after reading the 'an' card (as the wire carries it)."""
    from idstation.agent.emrtd.virtual_card.chip import VirtualChip
    from idstation.hal.reader_sim import SimReader

    image = image_for("an")
    reader = SimReader()
    reader.insert(VirtualChip(image), atr=image.atr, extended_length=True, max_response=65536)
    conn = reader.wait_for_card(1.0)
    candidates = candidates_for(can=profiles["an"].id_number[-6:])
    result = read_document(conn, candidates, ReadPolicy(), trust, aa_challenge=challenge_for(EVENT_ID))
    return identity_private("verified", None, result).model_dump(mode="json", exclude_none=True)


def test_the_challenge_is_the_first_8_bytes_of_sha256_over_the_event_id() -> None:
    import hashlib

    assert challenge_for(EVENT_ID) == hashlib.sha256(EVENT_ID.encode()).digest()[:8]


def test_a_genuine_read_for_this_event_is_verified_and_proves_presence(sent, trust) -> None:
    assert sent["aa_signature"]  # the box forwards the chip's signature
    assert recheck_identity(sent, EVENT_ID, trust) == {"passive": "verified", "data_match": True, "presence": "proven"}


def test_a_replayed_read_under_a_new_event_id_does_not_prove_presence(sent, trust) -> None:
    verdict = recheck_identity(sent, uuid7(), trust)  # same genuine data and signature, another event
    assert verdict == {"passive": "verified", "data_match": True, "presence": "not_proven"}


def test_genuine_data_without_the_chips_signature_does_not_prove_presence(sent, trust) -> None:
    stripped = {k: v for k, v in sent.items() if k != "aa_signature"}
    assert recheck_identity(stripped, EVENT_ID, trust)["presence"] == "not_proven"


def test_a_citizen_field_dg13_does_not_hold_is_a_chip_data_mismatch_naming_the_field_not_the_value(sent, trust) -> None:
    forged = copy.deepcopy(sent)
    forged["citizen"]["full_name"] = "Nguyễn Văn Giả"
    with pytest.raises(ChipRecheckFailed) as caught:
        recheck_identity(forged, EVENT_ID, trust)
    assert caught.value.reason == "chip_data_mismatch"
    assert "full_name" in str(caught.value)
    assert "Giả" not in str(caught.value) and sent["citizen"]["full_name"] not in str(caught.value)


def test_an_altered_data_group_fails_passive_authentication(sent, trust) -> None:
    dg13 = bytearray(base64.b64decode(sent["data_groups"]["DG13"]))
    dg13[-1] ^= 0x01
    forged = {**sent, "data_groups": {**sent["data_groups"], "DG13": base64.b64encode(bytes(dg13)).decode()}}
    with pytest.raises(ChipRecheckFailed) as caught:
        recheck_identity(forged, EVENT_ID, trust)
    assert caught.value.reason == "passive_auth_failed"


def test_a_dg15_swapped_for_the_forgers_key_fails_passive_authentication(sent, trust) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from idstation.agent.emrtd.lds import build

    own = build.encode_dg15(ec.generate_private_key(ec.SECP256R1()).public_key())
    forged = {**sent, "data_groups": {**sent["data_groups"], "DG15": base64.b64encode(own).decode()}}
    with pytest.raises(ChipRecheckFailed) as caught:
        recheck_identity(forged, EVENT_ID, trust)
    assert caught.value.reason == "passive_auth_failed"


def test_chip_data_under_a_csca_the_centre_does_not_hold_gets_its_own_verdict(sent) -> None:
    verdict = recheck_identity(sent, EVENT_ID, TrustStore([]))
    # the data still matches its SOD, but nobody the centre trusts vouches for DG15: no presence claim
    assert verdict == {"passive": "unknown_csca", "data_match": True, "presence": "not_checked"}


def test_an_event_without_ef_sod_is_marked_unverified_by_the_centre(sent, trust) -> None:
    unverified = {"passive": "unverified", "data_match": None, "presence": "not_checked"}
    assert recheck_identity({"source": "qr_only", "citizen": sent["citizen"]}, EVENT_ID, trust) == unverified
    assert recheck_identity({**sent, "ef_sod": None}, EVENT_ID, trust) == unverified


_garbage = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=40),
    st.binary(max_size=300).map(_b64),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(
    field=st.sampled_from(["ef_sod", "aa_signature", "citizen", "data_groups", "DG1", "DG13", "DG15"]), value=_garbage
)
def test_garbage_in_any_field_is_a_verdict_or_a_typed_rejection_never_a_crash(sent, trust, field, value) -> None:
    hostile = copy.deepcopy(sent)
    if field.startswith("DG"):
        hostile["data_groups"][field] = value
    else:
        hostile[field] = value
    try:
        verdict = recheck_identity(hostile, EVENT_ID, trust)
    except ChipRecheckFailed as exc:
        assert exc.reason in {"passive_auth_failed", "chip_data_mismatch"}
    else:
        assert set(verdict) == {"passive", "data_match", "presence"}
