"""``idstation decode-qr`` and ``idstation camera-test`` as a user runs them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from idstation.agent.cli import main
from idstation.agent.sim.scene import SceneParams, render_scene
from idstation.agent.sim.synth import random_payload

PAYLOAD = random_payload(np.random.default_rng(31))
KEYS = {"path", "ok", "text", "citizen", "error", "ms"}
CITIZEN_KEYS = {"id_number", "old_id_number", "full_name", "date_of_birth", "gender", "permanent_address", "issue_date"}


def _save(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def card_photo(tmp_path: Path) -> Path:
    params = SceneParams(width=1280, height=960, ppm=4.0, tilt=20, roll=-30, jpeg_quality=40, seed=4)
    return _save(tmp_path / "card.jpg", render_scene(PAYLOAD, params))


@pytest.fixture
def plain_qr(tmp_path: Path) -> Path:
    import segno

    path = tmp_path / "plain.png"
    segno.make("https://dichvucong.gov.vn/p/home", error="m").save(str(path), scale=5)
    return path


def _run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, object]:
    code = main(args)
    return code, json.loads(capsys.readouterr().out)


def test_decode_qr_json_gives_text_and_citizen_fields_with_iso_dates(
    card_photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, results = _run_json(["decode-qr", str(card_photo), "--json"], capsys)
    assert code == 0
    assert isinstance(results, list)
    (result,) = results
    assert set(result) >= KEYS
    assert result["path"] == str(card_photo)
    assert result["ok"] is True
    assert result["text"] == PAYLOAD
    assert result["error"] is None
    assert result["ms"] >= 0
    assert set(result["citizen"]) == CITIZEN_KEYS
    fields = PAYLOAD.split("|")
    assert result["citizen"]["id_number"] == fields[0]
    assert result["citizen"]["full_name"] == fields[2]
    dob = fields[3]
    assert result["citizen"]["date_of_birth"] == f"{dob[4:]}-{dob[2:4]}-{dob[:2]}"


def test_a_plain_qr_returns_its_text_with_citizen_null(plain_qr: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, results = _run_json(["decode-qr", "--json", str(plain_qr)], capsys)
    assert code == 0
    assert results[0]["ok"] is True  # type: ignore[index]
    assert results[0]["text"] == "https://dichvucong.gov.vn/p/home"  # type: ignore[index]
    assert results[0]["citizen"] is None  # type: ignore[index]


def test_an_image_without_a_code_fails_with_exit_1_and_keeps_the_others(
    tmp_path: Path, card_photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = _save(tmp_path / "empty.png", render_scene(None, SceneParams(width=640, height=480)))
    code, results = _run_json(["decode-qr", "--json", str(card_photo), str(empty)], capsys)
    assert code == 1
    assert [r["ok"] for r in results] == [True, False]  # type: ignore[union-attr]
    assert results[1]["error"]  # type: ignore[index]
    assert results[1]["text"] is None  # type: ignore[index]
    assert results[1]["citizen"] is None  # type: ignore[index]


def test_missing_or_unreadable_files_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.png").write_bytes(b"junk")
    code, results = _run_json(["decode-qr", "--json", str(tmp_path / "nope.png"), str(tmp_path / "junk.png")], capsys)
    assert code == 2
    assert all(set(r) == KEYS and r["ok"] is False and r["error"] for r in results)  # type: ignore[union-attr]


def test_decode_qr_plain_output_lists_the_fields(card_photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode-qr", str(card_photo)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out
    assert f"id_number: {PAYLOAD.split('|')[0]}" in out


def test_camera_test_on_the_simulated_camera_reports_rates(capsys: pytest.CaptureFixture[str]) -> None:
    code, stats = _run_json(["camera-test", "--seconds", "1", "--json"], capsys)
    assert code == 0
    assert stats["frames"] >= 1  # type: ignore[index]
    assert stats["decode_rate"] == 1.0  # type: ignore[index]
    assert {"fps", "median_ms", "p95_ms", "unchanged"} <= set(stats)  # type: ignore[arg-type]


def test_camera_test_replays_a_folder_and_stops_at_its_end(
    tmp_path: Path, card_photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    _save(folder / "1.png", render_scene(PAYLOAD, replace(SceneParams(), seed=1)))
    _save(folder / "2.png", render_scene(None, SceneParams()))
    code, stats = _run_json(["camera-test", "--source", f"replay:{folder}", "--seconds", "30", "--json"], capsys)
    assert code == 0
    assert stats["frames"] == 2  # type: ignore[index]
    assert stats["decoded"] == 1  # type: ignore[index]


def test_camera_test_plain_output_and_bad_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["camera-test", "--seconds", "0.5"]) == 0
    assert "frames/s" in capsys.readouterr().out
    assert main(["camera-test", "--source", "webcam"]) == 2
    assert main(["camera-test", "--source", "replay:/nonexistent/folder"]) == 7


def test_a_truncated_citizen_payload_decodes_with_the_parse_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import segno

    truncated = "|".join(PAYLOAD.split("|")[:5])
    path = tmp_path / "cut.png"
    segno.make(truncated.encode("utf-8"), mode="byte", error="m").save(str(path), scale=5)
    code, results = _run_json(["decode-qr", "--json", str(path)], capsys)
    assert code == 0  # the image decoded
    (result,) = results  # type: ignore[misc]
    assert result["ok"] is True
    assert result["text"] == truncated
    assert result["citizen"] is None
    assert "truncated" in result["error"]
    assert PAYLOAD.split("|")[2] not in result["error"]
