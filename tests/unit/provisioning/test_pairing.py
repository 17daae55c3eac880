"""The pairing code round-trips through its text form and refuses anything else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from idstation.mqtt.enrolment.pairing import PairingCode
from idstation.provisioning.errors import TokenError
from idstation.provisioning.identity import InitResult
from idstation.provisioning.terminal_qr import render_terminal


def test_round_trip(box: InitResult) -> None:
    assert PairingCode.parse(box.pairing.text()) == box.pairing


def test_repr_hides_the_token(box: InitResult) -> None:
    assert box.pairing.token not in repr(box.pairing)


def test_terminal_rendering_is_block_characters(box: InitResult) -> None:
    drawing = render_terminal(box.pairing.text())
    assert "█" in drawing and len(drawing.splitlines()) > 10


@given(st.text(max_size=200))
def test_any_text_either_parses_or_raises_token_error(text: str) -> None:
    with contextlib.suppress(TokenError):
        PairingCode.parse(text)


def test_wrong_version_is_named() -> None:
    with pytest.raises(TokenError, match="version"):
        PairingCode.parse("IDSPAIR:9:ids-0123456789abcdef:s:c:tok_tok_tok_tok_tok:" + "0" * 32)
