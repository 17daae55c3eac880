"""ChipSession against the VirtualChip: access control, reading strategies, faults."""

from __future__ import annotations

import logging

import pytest
from idstation.agent.emrtd.apdu import CommandApdu
from idstation.agent.emrtd.lds.security_infos import (
    PACE_ECDH_GM_3DES,
    PACE_ECDH_GM_AES_256,
)
from idstation.agent.emrtd.session import ChipSession
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.emrtd.virtual_card.image import FID_COM, FID_DG, FID_SOD, Faults
from idstation.agent.errors import AccessDenied, ApduError, SecureMessagingError
from idstation.hal.errors import CardRemoved

from tests.unit.agent.emrtd.protocol.chips import (
    CAN,
    FILES,
    MRZ,
    MRZ_TEXT,
    WRONG_CAN,
    WRONG_MRZ,
    CountingHandler,
    card_access,
    chip,
    image,
)

SIX_FILES = [FID_COM, FID_SOD, FID_DG[1], FID_DG[13], FID_DG[14], FID_DG[15]]


def _session(handler: object, *, extended: bool = True, max_response: int = 65536) -> ChipSession:
    return ChipSession.over(handler, extended_length=extended, max_response=max_response)  # type: ignore[arg-type]


def test_pace_can_opens_and_reads_every_file() -> None:
    session = _session(chip())
    assert session.open([CAN, MRZ]) == "PACE-CAN"
    for fid in [*SIX_FILES, FID_DG[2]]:
        assert session.read_file(fid) == FILES[fid]


def test_extended_reader_reads_six_files_with_six_read_binaries() -> None:
    tap = CountingHandler(chip())
    session = _session(tap)
    session.open([CAN])
    before = tap.read_binaries
    for fid in SIX_FILES:
        session.read_file(fid)
    assert tap.read_binaries - before == 6


def test_pace_with_mrz_key_only() -> None:
    assert _session(chip()).open([MRZ]) == "PACE-MRZ"


def test_wrong_can_then_right_mrz_opens_with_pace_mrz() -> None:
    assert _session(chip()).open([WRONG_CAN, MRZ]) == "PACE-MRZ"


def test_pace_mrz_refused_falls_back_to_bac() -> None:
    session = _session(chip(faults=Faults(pace_mrz_refused=True)))
    assert session.open([MRZ]) == "BAC"
    assert session.read_file(FID_DG[1]) == FILES[FID_DG[1]]


def test_bac_only_chip_opens_with_bac() -> None:
    session = _session(chip(faults=Faults(bac_only=True)))
    assert session.open([CAN, MRZ]) == "BAC"
    assert session.card_access is None
    assert session.read_file(FID_DG[2]) == FILES[FID_DG[2]]


def test_wrong_keys_end_in_access_denied_after_bounded_tries() -> None:
    handler = chip()
    with pytest.raises(AccessDenied):
        _session(handler).open([WRONG_CAN, WRONG_MRZ])
    assert handler.commands < 20


@pytest.mark.parametrize(("protocol", "parameter_id"), [(PACE_ECDH_GM_3DES, 12), (PACE_ECDH_GM_AES_256, 16)])
def test_other_pace_ciphers_and_curves(protocol: str, parameter_id: int) -> None:
    session = _session(chip(card_access=card_access(protocol, parameter_id)))
    assert session.open([CAN]) == "PACE-CAN"
    assert session.read_file(FID_DG[1]) == FILES[FID_DG[1]]


def test_short_reader_reads_a_large_file_in_short_chunks() -> None:
    tap = CountingHandler(chip())
    session = _session(tap, extended=False, max_response=256)
    session.open([CAN])
    assert session.read_file(FID_DG[2]) == FILES[FID_DG[2]]
    assert tap.extended == 0


def test_chip_refusing_extended_length_falls_back_to_short() -> None:
    session = _session(chip(faults=Faults(no_extended_length=True)))
    session.open([CAN])
    for fid in SIX_FILES:
        assert session.read_file(fid) == FILES[fid]


def test_chip_answering_6cxx_gets_the_exact_le() -> None:
    session = _session(chip(faults=Faults(exact_le=True)), extended=False, max_response=256)
    session.open([MRZ])
    assert session.card_access is not None
    for fid in SIX_FILES:
        assert session.read_file(fid) == FILES[fid]


def test_chip_refusing_sfi_is_read_with_select() -> None:
    session = _session(chip(faults=Faults(no_sfi=True)))
    session.open([CAN])
    for fid in SIX_FILES:
        assert session.read_file(fid) == FILES[fid]


def test_chip_capping_its_answers_is_read_in_chunks() -> None:
    session = _session(chip(max_response=1000))
    session.open([CAN])
    assert session.read_file(FID_DG[2]) == FILES[FID_DG[2]]


def test_offsets_above_7fff_use_read_binary_b1() -> None:
    big = bytes([0x75, 0x82, 0xA0, 0x00]) + bytes(range(256)) * 160
    tap = CountingHandler(chip(files={FID_DG[2]: big}, max_response=4096))
    session = _session(tap)
    session.open([CAN])
    assert session.read_file(FID_DG[2]) == big
    assert tap.odd_reads > 0


def test_bad_response_mac_is_a_secure_messaging_error() -> None:
    session = _session(chip(faults=Faults(bad_response_mac=True)))
    with pytest.raises(SecureMessagingError):
        session.open([CAN])
        session.read_file(FID_DG[1])


def test_card_removal_propagates_as_card_removed() -> None:
    session = _session(chip(faults=Faults(remove_after=12)))
    with pytest.raises(CardRemoved):
        session.open([CAN])
        for fid in SIX_FILES:
            session.read_file(fid)


def test_dg3_needs_terminal_authentication_and_the_session_survives() -> None:
    session = _session(chip())
    session.open([CAN])
    with pytest.raises(ApduError) as info:
        session.read_file(FID_DG[3])
    assert info.value.sw == 0x6982
    assert session.read_file(FID_DG[1]) == FILES[FID_DG[1]]


def test_chip_dropping_sm_on_an_error_is_reopened_for_the_next_file() -> None:
    from idstation.agent.emrtd.virtual_card.chip import VirtualChip

    from tests.unit.agent.emrtd.protocol.chips import image

    session = _session(VirtualChip(image(), plain_sm_errors=True))
    session.open([CAN])
    with pytest.raises(ApduError) as info:
        session.read_file(FID_DG[3])
    assert info.value.sw == 0x6982
    assert session.read_file(FID_DG[1]) == FILES[FID_DG[1]]
    assert session.method == "PACE-CAN"


def test_absent_file_is_6a82() -> None:
    session = _session(chip())
    session.open([CAN])
    with pytest.raises(ApduError) as info:
        session.read_file(FID_DG[11])
    assert info.value.sw == 0x6A82


def test_dead_chip_after_access_gives_a_card_error() -> None:
    session = _session(chip(faults=Faults(dead_after_access=True)))
    with pytest.raises(ApduError):
        session.open([CAN])
        session.read_file(FID_DG[1])


def test_active_authentication_signature_verifies() -> None:
    from idstation.agent.emrtd.active_auth import verify_active

    session = _session(chip())
    session.open([CAN])
    challenge = bytes.fromhex("0102030405060708")
    signature = session.internal_authenticate(challenge)
    assert verify_active(FILES[FID_DG[15]], challenge, signature).result == "ok"


def test_chip_authentication_ok_and_reading_continues() -> None:
    session = _session(chip())
    session.open([CAN])
    assert session.chip_authenticate(FILES[FID_DG[14]]).result == "ok"
    assert session.read_file(FID_DG[13]) == FILES[FID_DG[13]]


def test_chip_authentication_fails_for_a_clone_without_the_key() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    clone = chip(ca_key=ec.derive_private_key(424242, ec.BrainpoolP256R1()))
    session = _session(clone)
    session.open([CAN])
    assert session.chip_authenticate(FILES[FID_DG[14]]).result == "failed"


def test_chip_authentication_not_supported_without_a_key() -> None:
    session = _session(chip())
    session.open([CAN])
    assert session.chip_authenticate(bytes.fromhex("6E023100")).result == "not_supported"


def test_traffic_log_never_holds_decrypted_data(caplog: pytest.LogCaptureFixture) -> None:
    session = _session(chip())
    with caplog.at_level(logging.DEBUG, logger="idstation.traffic"):
        session.open([CAN])
        session.read_file(FID_DG[1])
    assert caplog.records
    assert all(
        MRZ_TEXT.hex() not in r.getMessage() and MRZ_TEXT[:12].hex() not in r.getMessage() for r in caplog.records
    )


def test_counters_count_wire_bytes() -> None:
    session = _session(chip())
    session.open([CAN])
    session.read_file(FID_DG[1])
    assert session.apdus > 5
    assert session.bytes_received > len(FILES[FID_DG[1]])
    assert session.bytes_sent > 0


class StrictLeChip(VirtualChip):
    """A chip that answers 6700 to any exact Le running past the end of the file."""

    def _read(self, command: CommandApdu, *, protected: bool, extended: bool) -> tuple[bytes, int]:
        data, sw = super()._read(command, protected=protected, extended=extended)
        if sw == 0x6282:
            raise ApduError(0x6700, "Le past the end")
        return data, sw


class OddExtendedChip(VirtualChip):
    """A chip that rejects extended READ BINARY with 6A86 instead of 6700."""

    def _read(self, command: CommandApdu, *, protected: bool, extended: bool) -> tuple[bytes, int]:
        if extended:
            raise ApduError(0x6A86, "no extended")
        return super()._read(command, protected=protected, extended=extended)


@pytest.mark.parametrize("extended", [True, False])
def test_chip_demanding_exact_le_is_read_after_a_header_probe(extended: bool) -> None:
    session = _session(StrictLeChip(image()), extended=extended, max_response=65536 if extended else 256)
    session.open([CAN])
    for fid in [*SIX_FILES, FID_DG[2]]:
        assert session.read_file(fid) == FILES[fid]


def test_chip_rejecting_extended_reads_with_another_status_word_is_read_short() -> None:
    session = _session(OddExtendedChip(image()))
    session.open([CAN])
    for fid in [*SIX_FILES, FID_DG[2]]:
        assert session.read_file(fid) == FILES[fid]


def test_reader_with_a_tiny_response_buffer_still_reads_in_small_chunks() -> None:
    session = _session(chip(), extended=False, max_response=64)
    session.open([CAN])
    assert session.read_file(FID_DG[1]) == FILES[FID_DG[1]]


class NoAppSelectChip(VirtualChip):
    """A chip that refuses SELECT of the application under SM with a bare 6A82 and drops SM."""

    def _select(self, command: CommandApdu, *, protected: bool) -> tuple[bytes, int]:
        if protected and command.p1 == 0x04:
            raise ApduError(0x6A82, "no application select under SM")
        return super()._select(command, protected=protected)


def test_chip_refusing_the_application_select_after_pace_is_reopened_once() -> None:
    handler = NoAppSelectChip(image(), plain_sm_errors=True)
    session = _session(handler)
    assert session.open([CAN]) == "PACE-CAN"
    for fid in SIX_FILES:
        assert session.read_file(fid) == FILES[fid]
