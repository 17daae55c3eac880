"""Garbage in: the terminal side raises only our CardError family; the virtual chip never raises."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd import crypto
from idstation.agent.emrtd.apdu import CommandApdu
from idstation.agent.emrtd.session import ChipSession
from idstation.agent.emrtd.sm import SecureMessaging
from idstation.agent.emrtd.virtual_card.image import FID_DG
from idstation.agent.errors import CardError

from tests.unit.agent.emrtd.protocol.chips import CAN, MRZ, chip

KEYS = (bytes(range(16)), bytes(range(16, 32)))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=300), st.sampled_from([crypto.TDES, crypto.AES128]))
def test_garbage_protected_responses_raise_only_card_errors(rapdu: bytes, cipher: crypto.SmCipher) -> None:
    sm = SecureMessaging(cipher, *KEYS, 5)
    sm.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=16))
    with contextlib.suppress(CardError):
        sm.unwrap(rapdu)


@FAST
@given(st.lists(st.tuples(st.binary(max_size=120), st.integers(0, 0xFFFF)), min_size=1, max_size=12))
def test_garbage_chip_answers_to_open_raise_only_card_errors(answers: list[tuple[bytes, int]]) -> None:
    queue = list(answers)

    def transmit(_apdu: bytes) -> tuple[bytes, int]:
        return queue.pop(0) if queue else (b"", 0x6F00)

    session = ChipSession(transmit, extended_length=True, max_response=65536)
    with contextlib.suppress(CardError):
        session.open([CAN, MRZ])


@SLOW
@given(st.integers(0, 30), st.binary(max_size=40), st.sampled_from(["truncate", "replace", "flip"]))
def test_one_corrupted_answer_in_a_real_read_raises_only_card_errors(index: int, junk: bytes, how: str) -> None:
    handler = chip()
    count = 0

    def transmit(apdu: bytes) -> tuple[bytes, int]:
        nonlocal count
        count += 1
        rapdu = handler(apdu)
        if count == index:
            if how == "truncate":
                rapdu = rapdu[: len(junk) % max(len(rapdu), 1)]
            elif how == "replace":
                rapdu = junk
            else:
                rapdu = bytes([rapdu[0] ^ 0x40]) + rapdu[1:]
        if len(rapdu) < 2:
            raise CardError("short answer from the test transport")
        return rapdu[:-2], int.from_bytes(rapdu[-2:], "big")

    session = ChipSession(transmit, extended_length=True, max_response=65536)
    try:
        session.open([CAN])
        session.read_file(FID_DG[1])
        session.read_file(FID_DG[14])
    except CardError:
        pass


def _commands() -> st.SearchStrategy[bytes]:
    structured = st.builds(
        lambda cla, ins, p1, p2, body: bytes([cla, ins, p1, p2]) + body,
        st.sampled_from([0x00, 0x0C, 0x10, 0x1C, 0x80, 0xFF]),
        st.sampled_from([0xA4, 0xB0, 0xB1, 0x84, 0x82, 0x22, 0x86, 0x88, 0x00, 0xCA]),
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=80),
    )
    return st.one_of(st.binary(max_size=300), structured)


@FAST
@given(st.lists(_commands(), min_size=1, max_size=8))
def test_garbage_commands_never_make_the_chip_raise(commands: list[bytes]) -> None:
    handler = chip()
    for command in commands:
        answer = handler(command)
        assert len(answer) >= 2


@SLOW
@given(st.lists(_commands(), min_size=1, max_size=6))
def test_garbage_commands_inside_a_secure_session_never_make_the_chip_raise(commands: list[bytes]) -> None:
    handler = chip()
    ChipSession.over(handler).open([CAN])
    for command in commands:
        assert len(handler(command)) >= 2
