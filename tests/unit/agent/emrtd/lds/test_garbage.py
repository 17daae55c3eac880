"""Garbage into every parser: only ParseError subclasses come out, and nothing hangs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.active_auth import verify_active
from idstation.agent.emrtd.citizen import citizen_json
from idstation.agent.emrtd.lds.com import parse_com
from idstation.agent.emrtd.lds.dg1 import parse_dg1
from idstation.agent.emrtd.lds.dg2 import parse_dg2
from idstation.agent.emrtd.lds.dg13 import parse_dg13
from idstation.agent.emrtd.lds.dg15 import parse_dg15
from idstation.agent.emrtd.lds.sod import parse_sod
from idstation.agent.emrtd.passive_auth import verify_passive
from idstation.agent.emrtd.virtual_card.image import FID_COM, FID_DG, FID_SOD
from idstation.agent.errors import ParseError
from idstation.agent.sim.profiles import image_for

PARSERS: dict[str, tuple[Callable[[bytes], Any], int]] = {
    "dg1": (parse_dg1, FID_DG[1]),
    "dg2": (parse_dg2, FID_DG[2]),
    "dg13": (parse_dg13, FID_DG[13]),
    "dg15": (parse_dg15, FID_DG[15]),
    "com": (parse_com, FID_COM),
    "sod": (parse_sod, FID_SOD),
    "citizen": (citizen_json, FID_DG[13]),
}
IMAGE = image_for("an")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _call(parser: Callable[[bytes], Any], data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parser(data)


@pytest.mark.parametrize("name", sorted(PARSERS))
@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(name: str, data: bytes) -> None:
    _call(PARSERS[name][0], data)


@pytest.mark.parametrize("name", sorted(PARSERS))
@SETTINGS
@given(data=st.data())
def test_mutated_real_files(name: str, data: st.DataObject) -> None:
    parser, fid = PARSERS[name]
    raw = bytearray(IMAGE.files[fid])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _call(parser, bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))


@pytest.mark.parametrize("name", sorted(PARSERS))
@SETTINGS
@given(payload=st.binary(max_size=200))
def test_right_outer_tag_with_garbage_inside(name: str, payload: bytes) -> None:
    parser, fid = PARSERS[name]
    outer = tlv.decode(IMAGE.files[fid]).tag
    _call(parser, tlv.encode(outer, payload))


@SETTINGS
@given(data=st.data())
def test_passive_auth_never_raises_on_mutated_sod(data: st.DataObject) -> None:
    raw = bytearray(IMAGE.files[FID_SOD])
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    groups = {n: IMAGE.files[fid] for n, fid in FID_DG.items() if fid in IMAGE.files}
    verdict = verify_passive(bytes(raw), groups, None)
    assert verdict.result in {"ok", "failed", "unknown_csca", "signer_expired"}


@SETTINGS
@given(dg15=st.binary(max_size=120), signature=st.binary(max_size=300))
def test_active_auth_never_raises(dg15: bytes, signature: bytes) -> None:
    assert verify_active(dg15, b"\x00" * 8, signature).result in {"failed", "not_supported"}


@SETTINGS
@given(signature=st.binary(max_size=300))
def test_active_auth_with_real_key_and_garbage_signature(signature: bytes) -> None:
    assert verify_active(IMAGE.files[FID_DG[15]], b"\x00" * 8, signature).result == "failed"
