"""The PC/SC adapter's pure logic: return-code map, IOCTL codes, GET RESPONSE chains."""

from __future__ import annotations

import pytest
from idstation.hal.errors import CardRemoved, NoCard, ReaderUnavailable, TransmitError
from idstation.hal.reader_pcsc import (
    SCARD_E_NO_SERVICE,
    SCARD_E_NOT_TRANSACTED,
    SCARD_E_TIMEOUT,
    SCARD_W_REMOVED_CARD,
    SCARD_W_RESET_CARD,
    error_for_hresult,
    ioctl_code,
    map_exceptions,
    transmit_collecting,
)


@pytest.mark.parametrize("code", [SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD])
def test_removed_or_reset_card_maps_to_card_removed(code: int) -> None:
    assert isinstance(error_for_hresult(code, "SCardTransmit"), CardRemoved)


def test_signed_hresults_map_like_unsigned_ones() -> None:
    assert isinstance(error_for_hresult(SCARD_W_REMOVED_CARD - (1 << 32), "x"), CardRemoved)


def test_no_service_maps_to_reader_unavailable() -> None:
    assert isinstance(error_for_hresult(SCARD_E_NO_SERVICE, "SCardEstablishContext"), ReaderUnavailable)


def test_timeout_maps_to_no_card_and_other_codes_to_transmit_error() -> None:
    assert isinstance(error_for_hresult(SCARD_E_TIMEOUT, "x"), NoCard)
    assert isinstance(error_for_hresult(SCARD_E_NOT_TRANSACTED, "x"), TransmitError)


def test_ioctl_code_is_computed_the_pcsc_lite_way() -> None:
    assert ioctl_code(1) == 0x42000001
    assert ioctl_code(3500) == 0x42000000 + 3500


def test_ioctl_code_out_of_range_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ioctl_code(-1)


class FakePyscardError(Exception):
    __module__ = "smartcard.Exceptions"

    def __init__(self, hresult: int | None = None) -> None:
        super().__init__("pyscard failure")
        if hresult is not None:
            self.hresult = hresult


def test_map_exceptions_turns_pyscard_errors_with_hresult_into_ours() -> None:
    with pytest.raises(CardRemoved), map_exceptions("SCardTransmit"):
        raise FakePyscardError(SCARD_W_REMOVED_CARD)


def test_map_exceptions_turns_other_pyscard_errors_into_transmit_errors() -> None:
    with pytest.raises(TransmitError), map_exceptions("SCardTransmit"):
        raise FakePyscardError()


def test_map_exceptions_leaves_our_bugs_alone() -> None:
    with pytest.raises(KeyError), map_exceptions("SCardTransmit"):
        raise KeyError("bug")


class ChainingCard:
    """Answers with 61xx and hands out the rest through GET RESPONSE, like a T=0 path."""

    def __init__(self, payload: bytes, chunk: int) -> None:
        self.payload = payload
        self.chunk = chunk
        self.sent: list[bytes] = []

    def __call__(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        head, self.payload = self.payload[: self.chunk], self.payload[self.chunk :]
        if self.payload:
            return head + bytes((0x61, min(len(self.payload), 255)))
        return head + b"\x90\x00"


def test_get_response_chain_is_collected_transparently() -> None:
    card = ChainingCard(bytes(range(200)) * 3, 100)
    data, sw = transmit_collecting(card, b"\x00\xb0\x00\x00\x00")
    assert (data, sw) == (bytes(range(200)) * 3, 0x9000)
    assert all(apdu[1] == 0xC0 for apdu in card.sent[1:])


def test_plain_answer_passes_through() -> None:
    assert transmit_collecting(lambda apdu: b"\x6a\x82", b"\x00\xa4\x02\x0c\x02\x01\x1e") == (b"", 0x6A82)


def test_answer_without_status_word_is_a_transmit_error() -> None:
    with pytest.raises(TransmitError):
        transmit_collecting(lambda apdu: b"", b"\x00\x00\x00\x00")


def test_endless_get_response_chain_is_bounded() -> None:
    with pytest.raises(TransmitError):
        transmit_collecting(lambda apdu: b"\x61\x10", b"\x00\x00\x00\x00")
