"""Coverage-guided fuzzing (atheris / libFuzzer) of everything a chip hands the terminal.

The first input byte picks a target; the rest is the chip's bytes. Targets: the LDS parsers (DG1,
DG2, DG13, DG15, EF.COM, EF.SOD, SecurityInfos of EF.CardAccess/DG14), the chip-authentication key
parser, passive and active authentication over the bytes, and a ``ChipSession`` whose every answer
comes from the input (access control and a file read). Only our ``ParseError``/``CardError``
families may come out; anything else is a crash libFuzzer reports with its input.

Run: ``python tests/fuzz/lds_harness.py -max_total_time=60 [corpus_dir]`` (needs the ``fuzz``
extra: ``pip install 'idstation[fuzz]'``). ``tests/unit/test_fuzz_atheris.py`` runs it briefly.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import atheris

with atheris.instrument_imports():
    from idstation.agent.emrtd.active_auth import verify_active
    from idstation.agent.emrtd.chip_auth import public_key_point
    from idstation.agent.emrtd.keys import CanKey, MrzKey
    from idstation.agent.emrtd.lds.com import parse_com
    from idstation.agent.emrtd.lds.dg1 import parse_dg1
    from idstation.agent.emrtd.lds.dg2 import parse_dg2
    from idstation.agent.emrtd.lds.dg13 import parse_dg13
    from idstation.agent.emrtd.lds.dg15 import parse_dg15
    from idstation.agent.emrtd.lds.security_infos import (
        ID_PK_ECDH,
        ChipAuthenticationPublicKeyInfo,
        parse_security_infos,
    )
    from idstation.agent.emrtd.lds.sod import parse_sod
    from idstation.agent.emrtd.passive_auth import verify_passive
    from idstation.agent.emrtd.session import ChipSession
    from idstation.agent.errors import CardError, ParseError


def _session(data: bytes) -> None:
    """Every chip answer is the next length-prefixed slice of ``data``; open, then read DG1."""
    pos = 0

    def transmit(_apdu: bytes) -> tuple[bytes, int]:
        nonlocal pos
        if pos + 3 > len(data):
            return b"", 0x6F00
        size = data[pos]
        sw = int.from_bytes(data[pos + 1 : pos + 3], "big")
        answer = data[pos + 3 : pos + 3 + size]
        pos += 3 + size
        return answer, sw

    session = ChipSession(transmit, extended_length=bool(data[:1] and data[0] & 1), max_response=65536)
    session.open([CanKey("123456"), MrzKey("093047064", "900101", "300101")])
    session.read_file(0x0101)


TARGETS: list[Callable[[bytes], Any]] = [
    parse_dg1,
    parse_dg2,
    parse_dg13,
    parse_dg15,
    parse_com,
    parse_sod,
    parse_security_infos,
    lambda d: public_key_point(ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, d)),
    lambda d: verify_passive(d, {1: d[:64]}, None),
    lambda d: verify_active(d[:-64] or b"\x6f\x00", b"12345678", d[-64:]),
    _session,
]


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    with contextlib.suppress(ParseError, CardError):
        target(bytes(data[1:]))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
