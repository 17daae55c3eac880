"""A hostile chip on the real PC/SC path: ``card serve --hostile`` over vpcd, ``read-card --json`` through pcscd.

The documented exit code and a JSON object on stdout for each hostile file, never a traceback.
"""

from __future__ import annotations

import pytest

from tests.integration.card.test_read_card_vpcd import CAN, read_card, serve  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("hostile", ["card-access-4gib", "dg2-oversize"])
def test_an_oversized_file_over_pcsc_is_a_card_error(serve, hostile: str) -> None:  # noqa: F811
    serve("an", "--hostile", hostile)
    code, doc = read_card("--can", CAN, extra=("--with-face",))
    assert code == 6
    assert doc["error"] == "card_error"


def test_a_forged_dg14_curve_over_pcsc_is_chip_auth_not_supported(serve) -> None:  # noqa: F811
    serve("an", "--hostile", "dg14-huge-prime")
    code, doc = read_card("--can", CAN)
    assert code == 1
    assert doc["verification"]["chip"]["result"] == "not_supported"


def test_an_unknown_hostile_name_is_bad_input() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "idstation.agent.cli", "card", "serve", "--profile", "an", "--hostile", "nope"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "card-access-4gib" in done.stderr


def test_an_answer_longer_than_a_vpcd_frame_becomes_wrong_length_not_a_dead_bridge() -> None:
    from idstation.agent.emrtd.virtual_card.vpcd import VpcdCard

    card = VpcdCard(lambda _apdu: bytes(70_000) + b"\x90\x00")
    assert card.answer(bytes.fromhex("00B0000000000000")) == b"\x67\x00"
