"""Real pcscd + vpcd + our bridge: APDUs, extended length, removal and the next card."""

from __future__ import annotations

import pytest
from idstation.hal.errors import CardRemoved
from idstation.hal.reader_pcsc import PcscReader

pytestmark = pytest.mark.integration


class Echo:
    """Echoes the command data back with 9000; leaves the field after ``pull_after`` commands."""

    atr = bytes.fromhex("3B8880010000000000000000")

    def __init__(self, pull_after: int | None = None) -> None:
        self.pull_after = pull_after
        self.count = 0

    def __call__(self, apdu: bytes) -> bytes:
        self.count += 1
        if self.count == self.pull_after:  # pulled once; the card placed again answers
            raise CardRemoved("pulled")
        if len(apdu) > 7 and apdu[4] == 0:
            return apdu[7 : 7 + int.from_bytes(apdu[5:7], "big")] + b"\x90\x00"
        return apdu[5 : 5 + apdu[4]] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"


@pytest.fixture
def reader(pcscd_reader: str):  # type: ignore[no-untyped-def]
    r = PcscReader(pcscd_reader)
    yield r
    r.close()


def test_card_on_vpcd_answers_through_pcscd(virtual_card, reader: PcscReader) -> None:  # type: ignore[no-untyped-def]
    virtual_card(Echo())
    conn = reader.wait_for_card(5.0)
    assert conn is not None
    try:
        assert conn.atr == Echo.atr
        assert conn.transmit(b"\x00\x01\x02\x03\x03abc\x00") == (b"abc", 0x9000)
    finally:
        conn.close()


def test_extended_length_apdu_passes_through(virtual_card, reader: PcscReader) -> None:  # type: ignore[no-untyped-def]
    virtual_card(Echo())
    conn = reader.wait_for_card(5.0)
    assert conn is not None
    payload = bytes(range(256)) * 4
    try:
        data, sw = conn.transmit(b"\x00\x01\x02\x03\x00" + len(payload).to_bytes(2, "big") + payload + b"\x00\x00")
    finally:
        conn.close()
    assert (data, sw) == (payload, 0x9000)


def test_reader_without_a_name_picks_the_reader_holding_the_card(virtual_card) -> None:  # type: ignore[no-untyped-def]
    virtual_card(Echo(), port=35964)
    any_reader = PcscReader()
    try:
        conn = any_reader.wait_for_card(5.0)
        assert conn is not None
        conn.close()
        assert any_reader.name == "Virtual PCD 00 01"
    finally:
        any_reader.close()


def test_no_card_within_the_timeout_returns_none(vpcd_lock: str, reader: PcscReader) -> None:
    assert reader.wait_for_card(0.3) is None


def test_card_pulled_mid_read_raises_card_removed_and_the_next_card_reads(virtual_card, reader: PcscReader) -> None:  # type: ignore[no-untyped-def]
    virtual_card(Echo(pull_after=3), reinsert_after=1.0)
    conn = reader.wait_for_card(5.0)
    assert conn is not None
    with pytest.raises(CardRemoved):
        for _ in range(5):
            conn.transmit(b"\x00\x01\x02\x03\x01x\x00")
    conn.close()
    assert reader.wait_for_removal(5.0)
    nxt = reader.wait_for_card(5.0)
    assert nxt is not None
    try:
        assert nxt.transmit(b"\x00\x01\x02\x03\x01y\x00") == (b"y", 0x9000)
    finally:
        nxt.close()
