"""The simulated reader behaves like a contactless reader: cards come and go, handles go stale."""

from __future__ import annotations

import threading

import pytest
from idstation.hal.errors import CardRemoved, TransmitError
from idstation.hal.ports import CardConnection, CardReader
from idstation.hal.reader_sim import SimReader


class Echo:
    """A card that echoes command data and counts resets."""

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def __call__(self, apdu: bytes) -> bytes:
        return apdu[5:] + b"\x90\x00"


class PulledAfter:
    """A card that leaves the field on its n-th command (like the virtual chip's remove_after)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0

    def __call__(self, apdu: bytes) -> bytes:
        self.count += 1
        if self.count >= self.n:
            raise CardRemoved("pulled")
        return b"\x90\x00"


def test_sim_reader_satisfies_the_reader_port() -> None:
    reader = SimReader()
    reader.insert(Echo())
    conn = reader.wait_for_card(0.1)
    assert isinstance(reader, CardReader)
    assert isinstance(conn, CardConnection)


def test_empty_reader_returns_no_card_after_the_timeout() -> None:
    assert SimReader().wait_for_card(0.05) is None


def test_inserted_card_answers_data_and_status_word() -> None:
    reader = SimReader()
    reader.insert(Echo(), extended_length=False, max_response=256)
    conn = reader.wait_for_card(0.1)
    assert conn is not None
    assert conn.transmit(bytes.fromhex("00010203") + b"\x02ab") == (b"ab", 0x9000)
    assert (conn.extended_length, conn.max_response) == (False, 256)


def test_insert_resets_the_handler() -> None:
    card = Echo()
    SimReader().insert(card)
    assert card.resets == 1


def test_wait_for_card_wakes_when_another_thread_inserts() -> None:
    reader = SimReader()
    timer = threading.Timer(0.05, reader.insert, args=(Echo(),))
    timer.start()
    try:
        assert reader.wait_for_card(5.0) is not None
    finally:
        timer.cancel()


def test_wait_for_removal_wakes_when_another_thread_removes() -> None:
    reader = SimReader()
    reader.insert(Echo())
    timer = threading.Timer(0.05, reader.remove)
    timer.start()
    try:
        assert reader.wait_for_removal(5.0) is True
    finally:
        timer.cancel()


def test_wait_for_removal_times_out_while_the_card_stays() -> None:
    reader = SimReader()
    reader.insert(Echo())
    assert reader.wait_for_removal(0.05) is False


def test_connection_to_a_removed_card_raises_card_removed() -> None:
    reader = SimReader()
    reader.insert(Echo())
    conn = reader.wait_for_card(0.1)
    assert conn is not None
    reader.remove()
    with pytest.raises(CardRemoved):
        conn.transmit(b"\x00\xa4\x00\x00")


def test_connection_to_a_replaced_card_raises_card_removed() -> None:
    reader = SimReader()
    reader.insert(Echo())
    old = reader.wait_for_card(0.1)
    reader.insert(Echo())
    assert old is not None
    with pytest.raises(CardRemoved):
        old.transmit(b"\x00\xa4\x00\x00")


def test_handler_raising_card_removed_empties_the_reader_and_next_card_reads() -> None:
    reader = SimReader()
    reader.insert(PulledAfter(2))
    conn = reader.wait_for_card(0.1)
    assert conn is not None
    assert conn.transmit(b"\x00\x00\x00\x00")[1] == 0x9000
    with pytest.raises(CardRemoved):
        conn.transmit(b"\x00\x00\x00\x00")
    assert not reader.card_present
    assert reader.wait_for_removal(0.0) is True
    reader.insert(Echo())
    nxt = reader.wait_for_card(0.1)
    assert nxt is not None
    assert nxt.transmit(b"\x00\x00\x00\x00\x01z")[0] == b"z"


def test_closed_connection_refuses_to_transmit() -> None:
    reader = SimReader()
    reader.insert(Echo())
    conn = reader.wait_for_card(0.1)
    assert conn is not None
    conn.close()
    with pytest.raises(TransmitError):
        conn.transmit(b"\x00\x00\x00\x00")


def test_handler_answer_without_status_word_is_a_transmit_error() -> None:
    reader = SimReader()
    reader.insert(lambda apdu: b"\x90")
    conn = reader.wait_for_card(0.1)
    assert conn is not None
    with pytest.raises(TransmitError):
        conn.transmit(b"\x00\x00\x00\x00")


def test_control_commands_are_accepted() -> None:
    reader = SimReader()
    assert reader.control(1, b"\x01") == b""
    assert reader.controls == [(1, b"\x01")]


def test_non_callable_handler_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        SimReader().insert(b"not a handler")  # type: ignore[arg-type]
