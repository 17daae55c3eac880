"""`idstation status` says how many events wait for the centre's receipt, and for how long."""

from __future__ import annotations

from pathlib import Path

from idstation.agent.status import read_status, render_status, write_status_file


def test_status_shows_events_awaiting_a_receipt_and_the_oldest_age(tmp_path: Path) -> None:
    outbox = {"depth": 3, "awaiting_receipt": 3, "oldest_awaiting_s": 42.5}
    write_status_file(tmp_path, {"state": "online", "outbox": outbox})
    text = render_status(read_status(tmp_path, 30))
    assert "3 event(s) await the centre's receipt, oldest 42.5 s" in text
