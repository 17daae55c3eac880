"""The clerk's last signal follows the store: a refused event ends on FAULT, never on a queued OK."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from idstation.agent import flow
from idstation.agent.app import Agent
from idstation.agent.config import validate
from idstation.hal.indicator import SimIndicator
from idstation.hal.ports import Signal
from idstation.hal.reader_sim import SimReader

from tests.unit.agent.test_app import QR, Camera, Chip, FullSink, find_qr, handler


def test_a_refused_identity_event_leaves_fault_as_the_last_signal(tmp_path: Path) -> None:
    cfg = validate(
        {"state_dir": str(tmp_path), "reader": {"kind": "sim", "poll_s": 0.05}, "camera": {"qr_budget_s": 0.3}}
    )
    reader, camera, indicator = SimReader(), Camera(), SimIndicator()
    camera.shown = QR
    agent = Agent(cfg, reader, camera, indicator, FullSink(), Chip(), find_qr)
    worker = threading.Thread(target=agent.work, daemon=True)
    worker.start()
    try:
        reader.insert(handler)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and agent.health.last_outcome != flow.NOT_STORED:
            time.sleep(0.02)
        time.sleep(0.3)  # a queued OK would have followed by now
        last = indicator.last
        reader.remove()
    finally:
        agent.stop_event.set()
        reader.close()
        worker.join(timeout=5)
    assert agent.health.last_outcome == flow.NOT_STORED
    assert last is not None
    assert (last.signal, last.message) == (Signal.ERROR, flow.NOT_STORED_MESSAGE)
    assert Signal.OK not in indicator.signals()
