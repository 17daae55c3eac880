"""The centre's chip check stage: its verdicts become rejections with a reason, and each verdict is
counted in the listener's metrics (idstation_chip_verdicts_total{check,verdict})."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.active_auth import challenge_for
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.sim.profiles import builtin_profiles, image_for, test_csca_pem, test_trust
from idstation.agent.wiring import identity_private
from idstation.hal.reader_sim import SimReader
from idstation.mqtt.central.chip_check import ChipCheck, load_csca
from idstation.mqtt.central.metrics import ListenerMetrics
from idstation.mqtt.clock import uuid7
from idstation.mqtt.errors import EventRejected

EVENT_ID = uuid7()


@pytest.fixture(scope="module")
def sent() -> dict[str, Any]:
    image = image_for("an")
    reader = SimReader()
    reader.insert(VirtualChip(image), atr=image.atr, extended_length=True, max_response=65536)
    can = builtin_profiles()["an"].id_number[-6:]
    result = read_document(
        reader.wait_for_card(1.0),
        candidates_for(can=can),
        ReadPolicy(),
        test_trust(),
        aa_challenge=challenge_for(EVENT_ID),
    )
    return identity_private("verified", None, result).model_dump(mode="json", exclude_none=True)


def _count(metrics: ListenerMetrics, check: str, verdict: str) -> float:
    value = metrics.registry.get_sample_value("idstation_chip_verdicts_total", {"check": check, "verdict": verdict})
    return value or 0.0


def test_the_csca_directory_is_the_centres_trust_store_and_verdicts_are_counted(sent, tmp_path) -> None:
    (tmp_path / "csca.pem").write_bytes(test_csca_pem())
    metrics = ListenerMetrics()
    check = ChipCheck(load_csca(tmp_path), on_verdict=metrics.on_chip_verdict)
    assert check(EVENT_ID, sent) == {"passive": "verified", "data_match": True, "presence": "proven"}
    assert check(uuid7(), sent)["presence"] == "not_proven"
    assert _count(metrics, "presence", "proven") == 1
    assert _count(metrics, "presence", "not_proven") == 1
    assert _count(metrics, "passive", "verified") == 2


def test_a_forged_citizen_is_rejected_with_its_reason_and_counted(sent, tmp_path) -> None:
    (tmp_path / "csca.pem").write_bytes(test_csca_pem())
    metrics = ListenerMetrics()
    forged = copy.deepcopy(sent)
    forged["citizen"]["date_of_birth"] = "1999-01-01"
    with pytest.raises(EventRejected) as caught:
        ChipCheck(load_csca(tmp_path), on_verdict=metrics.on_chip_verdict)(EVENT_ID, forged)
    assert caught.value.reason == "chip_data_mismatch"
    assert _count(metrics, "data_match", "mismatch") == 1


def test_the_document_signer_is_parsed_and_chained_once_for_many_events(sent) -> None:
    cached, uncached = ChipCheck(test_trust()), ChipCheck(test_trust(), signer_cache=0)
    verdicts = [cached(EVENT_ID, sent) for _ in range(3)]
    assert verdicts == [uncached(EVENT_ID, sent)] * 3
    assert cached.signers is not None and (cached.signers.misses, cached.signers.hits) == (1, 2)
    assert uncached.signers is None
