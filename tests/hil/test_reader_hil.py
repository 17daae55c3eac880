"""Real reader and real card: skipped unless IDSTATION_HIL_READER names a reader.

    IDSTATION_HIL_READER="ACS ACR1252" IDSTATION_HIL_QR="<QR text of the card on it>" pytest -m hil tests/hil

With IDSTATION_HIL_QR the whole read runs (PACE with the CAN, else BAC from the QR fields);
without it only the reader, the card presence and a plain SELECT of EF.CardAccess are checked.
"""

from __future__ import annotations

import os

import pytest

READER = os.environ.get("IDSTATION_HIL_READER", "")
QR = os.environ.get("IDSTATION_HIL_QR", "")

pytestmark = [
    pytest.mark.hil,
    pytest.mark.skipif(not READER, reason="set IDSTATION_HIL_READER to a reader name to run hardware tests"),
]


@pytest.fixture
def reader():  # type: ignore[no-untyped-def]
    from idstation.hal.reader_pcsc import PcscReader

    r = PcscReader(READER)
    yield r
    r.close()


def test_named_reader_is_listed(reader) -> None:  # type: ignore[no-untyped-def]
    assert any(READER.lower() in name.lower() for name in reader.readers())


def test_card_on_the_reader_answers_select_of_ef_card_access(reader) -> None:  # type: ignore[no-untyped-def]
    conn = reader.wait_for_card(30.0)
    assert conn is not None, "place a citizen ID card on the reader"
    try:
        _data, sw = conn.transmit(bytes.fromhex("00A4020C02011C"))
    finally:
        conn.close()
    assert sw in (0x9000, 0x6A82)


@pytest.mark.skipif(not QR, reason="set IDSTATION_HIL_QR to the card's QR text for a full read")
def test_full_read_with_the_qr_keys(reader) -> None:  # type: ignore[no-untyped-def]
    from idstation.agent.access import candidates_for
    from idstation.agent.emrtd.read import ReadPolicy, read_document

    conn = reader.wait_for_card(30.0)
    assert conn is not None, "place the card whose QR was given on the reader"
    try:
        result = read_document(conn, candidates_for(qr=QR), ReadPolicy(), trust=None)
    finally:
        conn.close()
    assert result.access in ("PACE-CAN", "PACE-MRZ", "BAC")
    assert result.citizen is not None
