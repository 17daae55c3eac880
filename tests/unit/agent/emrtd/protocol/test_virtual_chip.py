"""The virtual chip's answers to plain commands, as a CCCD chip gives them."""

from __future__ import annotations

import pytest
from idstation.agent.emrtd.apdu import parse_response
from idstation.agent.emrtd.bac import Bac
from idstation.agent.emrtd.session import ChipSession
from idstation.agent.emrtd.virtual_card.image import FID_DG
from idstation.agent.errors import SecureMessagingError

from tests.unit.agent.emrtd.protocol.chips import CAN, FILES, WRONG_MRZ, card_access, chip

H = bytes.fromhex


def _sw(answer: bytes) -> int:
    return parse_response(answer)[1]


def test_select_mf_answers_6d00() -> None:
    assert _sw(chip()(H("00A4000C023F00"))) == 0x6D00


def test_card_access_is_readable_before_access_control() -> None:
    handler = chip()
    assert _sw(handler(H("00A4020C02011C"))) == 0x9000
    assert handler(H("00B0000000")) == card_access() + H("9000")


def test_data_groups_need_access_control() -> None:
    handler = chip()
    assert _sw(handler(H("00B0810000"))) == 0x6982


def test_emrtd_application_selects_by_name() -> None:
    assert _sw(chip()(H("00A4040C07A0000002471001"))) == 0x9000


def test_absent_data_group_is_6a82() -> None:
    assert _sw(chip()(H("00A4020C02010B"))) == 0x6A82


@pytest.mark.parametrize("raw", ["", "00", "00B0", "00B000000100", "FFFFFFFF", "00A4020C0501"])
def test_malformed_commands_get_an_error_status(raw: str) -> None:
    assert _sw(chip()(H(raw))) in {0x6700, 0x6A86, 0x6D00, 0x6E00, 0x6A82, 0x6982, 0x6986, 0x6987}


def test_wrong_bac_key_answers_6300() -> None:
    handler = chip()
    bac = Bac(WRONG_MRZ)
    external = bac.receive(*parse_response(handler(bac.start().encode())))
    assert _sw(handler(external.encode())) == 0x6300  # type: ignore[union-attr]


def test_power_cycle_drops_secure_messaging() -> None:
    handler = chip()
    session = ChipSession.over(handler)
    session.open([CAN])
    handler.reset()
    with pytest.raises(SecureMessagingError):
        session.read_file(FID_DG[1])
    session.open([CAN])
    assert session.read_file(FID_DG[1]) == FILES[FID_DG[1]]
