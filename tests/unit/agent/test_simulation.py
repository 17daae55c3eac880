"""The simulated card series: scenarios become the right cards; the queue resumes after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from idstation.agent.errors import ConfigError
from idstation.agent.sim.simulation import EXPECTED, SCENARIOS, CardSeries, build_cards
from idstation.hal.errors import CameraError
from idstation.hal.reader_sim import SimReader


def test_every_scenario_has_an_expected_outcome() -> None:
    assert set(SCENARIOS) == set(EXPECTED)


def test_cards_cycle_citizens_and_hide_the_qr_when_asked() -> None:
    cards = build_cards(None, ["ok", "qr_hidden", "wrong_qr"], 3)
    assert [c.scenario for c in cards] == ["ok", "qr_hidden", "wrong_qr"]
    assert cards[0].qr is not None
    assert cards[1].qr is None
    assert cards[2].qr is not None
    assert cards[2].qr.split("|")[0] != cards[2].image.can  # another citizen's QR
    assert cards[0].image.can == cards[0].qr.split("|")[0][-6:]


def test_an_unknown_scenario_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scenario"):
        build_cards(None, ["ok", "explode"], 2)


def test_a_missing_profiles_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        build_cards(tmp_path / "nope", [], 1)


def test_the_camera_payload_raises_for_a_dead_camera_card() -> None:
    reader = SimReader()
    series = CardSeries(reader, build_cards(None, ["camera_dead"], 1), 1, start_delay_s=0, hold_s=0, interval_s=0)
    series._current = series._make_cards()[0]
    with pytest.raises(CameraError):
        series.current_qr()


def run_series(reader: SimReader, series: CardSeries, served: list[int]) -> None:
    """Act as the box: answer each placement, then let the series finish."""
    series.start()
    for _ in range(series.count):
        if reader.wait_for_card(5) is None:
            break
        served.append(1)
        series.outcome("verified")
        reader.wait_for_removal(5)
    assert series.done.wait(10)
    series.stop()


def test_a_restarted_series_continues_the_queue(tmp_path: Path) -> None:
    progress = tmp_path / "simulation.json"
    cards = build_cards(None, [], 3)
    served: list[int] = []
    reader = SimReader()
    first = CardSeries(reader, cards, 3, start_delay_s=0, hold_s=0, interval_s=0.05, progress_path=progress)
    first.count = 1  # the first daemon serves one citizen, then dies
    run_series(reader, first, served)
    second = CardSeries(reader, cards, 3, start_delay_s=0, hold_s=0, interval_s=0.05, progress_path=progress)
    run_series(reader, second, served)
    assert len(served) == 3
    assert second.presented == ["ok", "ok"]
