"""read_document in process over the real PC/SC stack: PcscReader → pcscd → vpcd → our bridge → VirtualChip."""

from __future__ import annotations

import pytest
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.emrtd.virtual_card.image import Faults
from idstation.agent.sim.profiles import builtin_profiles, image_for, qr_text, test_trust
from idstation.hal.errors import CardRemoved
from idstation.hal.reader_pcsc import PcscReader

pytestmark = pytest.mark.integration


@pytest.fixture
def reader(vpcd_lock: str):  # type: ignore[no-untyped-def]
    r = PcscReader(vpcd_lock)
    yield r
    r.close()


def test_whole_read_with_face_through_pcscd(virtual_card, reader: PcscReader) -> None:  # type: ignore[no-untyped-def]
    binh = builtin_profiles()["binh"]
    virtual_card(image_for("binh"))
    conn = reader.wait_for_card(10.0)
    assert conn is not None
    try:
        result = read_document(
            conn, candidates_for(qr=qr_text(binh)), ReadPolicy(with_face=True), test_trust()
        )
    finally:
        conn.close()
    assert result.verified
    assert result.face is not None and result.face[1] == binh.face
    assert result.citizen is not None and result.citizen["gender"] == "Nữ"


def test_pulled_card_then_the_same_card_held_still_reads(virtual_card, reader: PcscReader) -> None:  # type: ignore[no-untyped-def]
    an = builtin_profiles()["an"]
    keys, trust = candidates_for(can=an.id_number[-6:]), test_trust()
    bridge = virtual_card(image_for("an", Faults(remove_after=9)), reinsert_after=1.0)
    bridge.reinsert_handler = VirtualChip(image_for("an"))
    conn = reader.wait_for_card(10.0)
    assert conn is not None
    with pytest.raises(CardRemoved):
        read_document(conn, keys, ReadPolicy(), trust)
    conn.close()
    assert reader.wait_for_removal(10.0)
    nxt = reader.wait_for_card(10.0)
    assert nxt is not None
    try:
        assert read_document(nxt, keys, ReadPolicy(), trust).verified
    finally:
        nxt.close()
