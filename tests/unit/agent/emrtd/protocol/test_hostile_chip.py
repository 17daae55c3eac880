"""A hostile chip (oversized files, forged curves, bad key IDs) gets typed answers, fast and bounded.

Each test drives the real session against the virtual chip serving a hostile file
(``Faults(hostile=...)``) behind genuine access control and secure messaging.
"""

from __future__ import annotations

import pytest
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds.limits import BIOMETRIC_CAP, max_file_size
from idstation.agent.emrtd.session import ChipSession
from idstation.agent.emrtd.virtual_card.image import FID_CARD_ACCESS, FID_DG, Faults
from idstation.agent.errors import CardError, FileTooLarge

from tests.unit.agent.emrtd.protocol.chips import CAN, FILES, MRZ, CountingHandler, chip


def _session(handler: object) -> ChipSession:
    return ChipSession.over(handler)  # type: ignore[arg-type]


def test_card_access_claiming_4_gib_is_refused_after_its_first_chunk() -> None:
    tap = CountingHandler(chip(faults=Faults(hostile="card-access-4gib")))
    session = _session(tap)
    with pytest.raises(FileTooLarge, match="011C"):
        session.open([CAN, MRZ])
    assert tap.read_binaries == 1


def test_a_data_group_past_its_cap_is_refused_without_reading_it() -> None:
    tap = CountingHandler(chip(faults=Faults(hostile="dg2-oversize")))
    session = _session(tap)
    session.open([CAN])
    before = tap.read_binaries
    with pytest.raises(FileTooLarge, match="0102"):
        session.read_file(FID_DG[2])
    assert tap.read_binaries - before == 1


def test_a_large_genuine_face_under_the_cap_is_read_whole() -> None:
    big = tlv.encode(0x75, bytes(range(256)) * (900 * 1024 // 256))
    assert len(big) < BIOMETRIC_CAP
    session = _session(chip(files={FID_DG[2]: big}))
    session.open([CAN])
    assert session.read_file(FID_DG[2]) == big


def test_short_apdus_reach_the_cap_check_too() -> None:
    session = ChipSession.over(chip(faults=Faults(hostile="dg2-oversize")), extended_length=False, max_response=256)
    session.open([CAN])
    with pytest.raises(FileTooLarge):
        session.read_file(FID_DG[2])


def test_caps_sit_far_above_genuine_files_and_far_below_the_memory_limit() -> None:
    assert max_file_size(FID_CARD_ACCESS) >= 4096
    assert 256 * 1024 <= max_file_size(FID_DG[2]) <= 4 * 1024 * 1024
    assert max_file_size(0x011D) >= 32 * 1024


@pytest.mark.parametrize(
    "hostile", ["dg14-huge-prime", "dg14-order-1", "dg14-even-p", "dg14-char2", "dg14-negative-key-id"]
)
def test_hostile_dg14_makes_chip_authentication_not_supported_with_a_reason(hostile: str) -> None:
    handler = chip(faults=Faults(hostile=hostile))
    session = _session(handler)
    session.open([CAN])
    dg14 = session.read_file(FID_DG[14])
    outcome = session.chip_authenticate(dg14)
    assert outcome.result == "not_supported"
    assert outcome.reason
    assert session.read_file(FID_DG[1])  # the channel is intact: nothing was sent for the forged key


def test_explicit_parameters_over_a_named_field_but_another_curve_are_refused() -> None:
    from idstation.agent.emrtd import ec
    from idstation.agent.emrtd.chip_auth import public_key_point
    from idstation.agent.emrtd.lds.security_infos import ID_PK_ECDH, ChipAuthenticationPublicKeyInfo
    from idstation.agent.emrtd.virtual_card.hostile import explicit_spki
    from idstation.agent.errors import ParseError

    spki = explicit_spki(ec.P256.p, 5, ec.P256.n)
    with pytest.raises(ParseError, match="differ"):
        public_key_point(ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, spki))


def test_a_hostile_rsa_aa_key_fails_active_authentication_without_computing() -> None:
    from idstation.agent.emrtd.read import ReadPolicy, read_document
    from idstation.hal.reader_sim import SimReader

    handler = chip(faults=Faults(hostile="dg15-huge-exponent"))
    reader = SimReader()
    reader.insert(handler, atr=handler.image.atr, extended_length=True, max_response=65536)
    conn = reader.wait_for_card(1.0)
    assert conn is not None
    result = read_document(conn, [CAN], ReadPolicy(chip_auth=False))
    assert result.verification["active"] == {"result": "failed", "reason": "DG15 is malformed"}


def test_a_chip_dripping_a_few_bytes_per_read_is_given_up_on_after_a_few_reads() -> None:
    tap = CountingHandler(chip(faults=Faults(max_chunk=8)))
    session = _session(tap)
    session.open([CAN])
    before = tap.read_binaries
    with pytest.raises(CardError, match="few bytes"):
        session.read_file(FID_DG[2])  # 20 KB: 2,500 reads at 8 bytes each (a 1 MiB DG2: 131,000)
    assert tap.read_binaries - before <= 12


def test_a_chip_with_small_but_steady_chunks_is_still_read() -> None:
    session = _session(chip(faults=Faults(max_chunk=100)))
    assert session.open([CAN]) == "PACE-CAN"
    assert session.read_file(FID_DG[13]) == FILES[FID_DG[13]]
