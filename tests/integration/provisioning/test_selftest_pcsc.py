"""The self-test's reader check against real pcscd + vpcd with the virtual chip on the reader."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from idstation.agent.sim.selftest import SelftestSimulator
from idstation.provisioning.selftest import check_reader
from idstation.provisioning.selftest_devices import reader_factory, test_card

pytestmark = pytest.mark.integration


def test_pcsc_reader_with_a_card_passes(pcscd_reader: str, virtual_card: Callable[..., object]) -> None:
    virtual_card(test_card(SelftestSimulator()).handler)
    check = check_reader(reader_factory(f"pcsc:{pcscd_reader}"), timeout=5.0)
    assert check.ok, check.detail


def test_pcsc_reader_without_a_card_fails_clearly(pcscd_reader: str) -> None:
    check = check_reader(reader_factory(f"pcsc:{pcscd_reader}"), timeout=0.5)
    assert not check.ok and "no card" in check.detail


def test_missing_pcsc_reader_is_a_failed_check_not_a_crash(pcscd_reader: str) -> None:
    from idstation.provisioning.selftest import guarded

    check = guarded("reader", lambda: check_reader(reader_factory("pcsc:No Such Reader 99"), timeout=0.5))
    assert not check.ok and "no PC/SC reader matching" in check.detail
