"""The daemon's worker with the simulated reader and fakes for the camera, chip read and sink."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from idstation.agent import flow
from idstation.agent.app import Agent
from idstation.agent.config import validate
from idstation.agent.daemon import Daemon
from idstation.agent.errors import AccessDenied
from idstation.agent.sdnotify import Notifier
from idstation.hal.errors import CameraError, CardRemoved, TransmitError
from idstation.hal.indicator import SimIndicator
from idstation.hal.ports import Frame, Signal
from idstation.hal.reader_sim import SimReader

QR = "001090123456||Nguyễn Văn A|01011990|Nam|Hà Nội|15042021"


class Sink:
    """Records events like the outbox would store them (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.statuses: list[dict[str, Any]] = []
        self.closed = False
        self.cond = threading.Condition()

    def identity(self, status: str, qr_text: str | None, result: object | None) -> None:
        with self.cond:
            self.events.append(("identity", status))
            self.cond.notify_all()

    def read_failed(self, reason: str) -> None:
        with self.cond:
            self.events.append(("read_failed", reason))
            self.cond.notify_all()

    def status(self, doc: dict[str, Any]) -> None:
        self.statuses.append(doc)

    def health(self) -> dict[str, Any]:
        return {"connected": True, "depth": 0}

    def close(self) -> None:
        self.closed = True

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[str, str]]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.events) >= n, timeout)
            return list(self.events)


class Camera:
    """Shows whatever ``shown`` holds; raises when ``dead``."""

    def __init__(self) -> None:
        self.shown: str | None = None
        self.dead = False
        self.starts = 0

    def start(self) -> None:
        self.starts += 1

    def stop(self) -> None:
        pass

    def read(self, timeout: float) -> Frame | None:
        if self.dead:
            self.dead = False  # a restart brings it back
            raise CameraError("camera gone")
        time.sleep(min(timeout, 0.01))
        gray = np.full((48, 64), 255 if self.shown else 0, dtype=np.uint8)
        return Frame(gray=gray, timestamp=time.monotonic(), seq=0, meta={"qr": self.shown})


def find_qr(frame: Frame) -> str | None:
    return frame.meta.get("qr")  # type: ignore[return-value]


class Chip:
    """What the chip read does for the card on the reader: a verdict or an exception."""

    def __init__(self) -> None:
        self.outcome: Any = flow.VERDICT_VERIFIED
        self.reads = 0

    def __call__(self, conn: Any, qr_text: str) -> tuple[str, object]:
        self.reads += 1
        conn.transmit(b"\x00\xa4\x04\x0c")
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome, None


def handler(apdu: bytes) -> bytes:
    return b"\x90\x00"


@pytest.fixture
def rig(tmp_path: Path):
    cfg = validate(
        {
            "state_dir": str(tmp_path),
            "reader": {"kind": "sim", "poll_s": 0.05},
            "camera": {"kind": "sim", "qr_budget_s": 0.3, "qr_memory_s": 0},
        }
    )
    reader, camera, chip, sink, indicator = SimReader(), Camera(), Chip(), Sink(), SimIndicator()
    agent = Agent(cfg, reader, camera, indicator, sink, chip, find_qr)
    agent.start_devices()
    worker = threading.Thread(target=agent.work, daemon=True)
    worker.start()
    yield agent, reader, camera, chip, sink, indicator
    agent.stop_event.set()
    reader.close()
    worker.join(timeout=5)


def place(reader: SimReader, sink: Sink, n: int, hold: float = 0.05) -> list[tuple[str, str]]:
    reader.insert(handler)
    events = sink.wait_for(n)
    time.sleep(hold)
    reader.remove()
    time.sleep(0.2)  # a clerk's hand: the next card comes after the reader saw this one leave
    return events


def test_n_placements_give_n_verified_identity_events(rig) -> None:
    _agent, reader, camera, _chip, sink, indicator = rig
    camera.shown = QR
    for i in range(3):
        place(reader, sink, i + 1)
    assert sink.wait_for(3) == [("identity", "verified")] * 3
    assert Signal.OK in indicator.signals()


def test_a_card_left_on_the_reader_is_read_once(rig) -> None:
    _agent, reader, camera, chip, sink, _ = rig
    camera.shown = QR
    place(reader, sink, 1, hold=0.5)
    assert chip.reads == 1
    assert sink.events == [("identity", "verified")]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda cam, chip: setattr(cam, "shown", None), ("read_failed", "qr_not_visible")),
        (lambda cam, chip: setattr(chip, "outcome", AccessDenied("no key")), ("read_failed", "access_denied")),
        (lambda cam, chip: setattr(chip, "outcome", CardRemoved("gone")), ("read_failed", "card_removed")),
        (lambda cam, chip: setattr(chip, "outcome", TransmitError("usb")), ("identity", "unverified")),
        (lambda cam, chip: setattr(chip, "outcome", flow.VERDICT_FAILED), ("read_failed", "verification_failed")),
        (lambda cam, chip: setattr(chip, "outcome", flow.VERDICT_UNKNOWN_CSCA), ("identity", "unknown_csca")),
        (lambda cam, chip: setattr(cam, "dead", True), ("read_failed", "camera_failed")),
        (lambda cam, chip: setattr(chip, "outcome", RuntimeError("bug")), ("read_failed", "internal_error")),
    ],
)
def test_each_failure_gives_its_event_and_the_next_card_works(rig, setup, expected) -> None:
    _agent, reader, camera, chip, sink, _ = rig
    camera.shown = QR
    setup(camera, chip)
    place(reader, sink, 1)
    camera.shown, chip.outcome = QR, flow.VERDICT_VERIFIED
    place(reader, sink, 2)
    assert sink.wait_for(2) == [expected, ("identity", "verified")]


def test_status_document_reports_devices_and_outcomes(rig) -> None:
    agent, reader, camera, _chip, sink, _ = rig
    camera.shown = QR
    place(reader, sink, 1)
    doc = agent.status_doc()
    assert (doc["state"], doc["reader"], doc["camera"], doc["placements"]) == ("online", "ok", "ok", 1)
    assert doc["outcomes"] == {"verified": 1}
    assert doc["last_read_at"].endswith("Z")


def test_the_daemon_stops_cleanly_and_closes_the_sink(tmp_path: Path) -> None:
    cfg = validate(
        {"state_dir": str(tmp_path), "reader": {"kind": "sim", "poll_s": 0.05}, "status": {"interval_s": 0.2}}
    )
    sink = Sink()
    agent = Agent(cfg, SimReader(), None, SimIndicator(), sink, Chip(), find_qr)
    daemon = Daemon(agent, Notifier(environ={}))
    threading.Timer(0.5, agent.stop_event.set).start()
    assert daemon.run() == 0
    assert sink.closed
    assert sink.statuses
    assert '"state": "stopped"' in (tmp_path / "status.json").read_text()


def test_a_qr_shown_before_the_card_is_used_when_the_qr_side_is_down(tmp_path: Path) -> None:
    cfg = validate(
        {
            "state_dir": str(tmp_path),
            "reader": {"kind": "sim", "poll_s": 0.05},
            "camera": {"kind": "sim", "qr_budget_s": 0.3, "qr_memory_s": 30, "idle_scan_s": 0.05},
        }
    )
    reader, camera, chip, sink = SimReader(), Camera(), Chip(), Sink()
    agent = Agent(cfg, reader, camera, SimIndicator(), sink, chip, find_qr)
    worker = threading.Thread(target=agent.work, daemon=True)
    worker.start()
    try:
        camera.shown = QR  # the citizen shows the QR to the camera first
        time.sleep(0.5)
        camera.shown = None  # then lays the card QR side down
        place(reader, sink, 1)
    finally:
        agent.stop_event.set()
        reader.close()
        worker.join(timeout=5)
    assert sink.events == [("identity", "verified")]


class FullSink(Sink):
    """An outbox that refuses data events (full disk)."""

    def identity(self, status: str, qr_text: str | None, result: object | None) -> None:
        from idstation.mqtt.errors import OutboxFull

        raise OutboxFull("outbox is full")


def test_a_refused_event_is_signalled_and_the_worker_keeps_going(tmp_path: Path) -> None:
    cfg = validate(
        {"state_dir": str(tmp_path), "reader": {"kind": "sim", "poll_s": 0.05}, "camera": {"qr_budget_s": 0.3}}
    )
    reader, camera, sink, indicator = SimReader(), Camera(), FullSink(), SimIndicator()
    camera.shown = QR
    agent = Agent(cfg, reader, camera, indicator, sink, Chip(), find_qr)
    worker = threading.Thread(target=agent.work, daemon=True)
    worker.start()
    try:
        for _ in range(2):
            reader.insert(handler)
            time.sleep(0.6)
            reader.remove()
            time.sleep(0.2)
        assert worker.is_alive()
    finally:
        agent.stop_event.set()
        reader.close()
        worker.join(timeout=5)
    assert [s.message for s in indicator.history].count("FAULT: event could not be stored") == 2
    assert agent.health.placements == 2


class SlowChip(Chip):
    """A chip read that hangs (a wedged reader driver)."""

    def __call__(self, conn: Any, qr_text: str) -> tuple[str, object]:
        time.sleep(3.0)
        return flow.VERDICT_VERIFIED, None


def test_systemd_gets_ready_and_watchdog_pings_only_while_the_worker_is_alive(tmp_path: Path) -> None:
    import socket

    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "notify"))
    server.settimeout(0.2)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"}
    cfg = validate(
        {
            "state_dir": str(tmp_path),
            "reader": {"kind": "sim", "poll_s": 0.05, "read_timeout_s": 0.2},
            "camera": {"qr_budget_s": 0.2},
        }
    )
    reader, camera = SimReader(), Camera()
    camera.shown = QR
    agent = Agent(cfg, reader, camera, SimIndicator(), Sink(), SlowChip(), find_qr)
    daemon = Daemon(agent, Notifier(environ=env))
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    messages: list[tuple[float, bytes]] = []

    def collect(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                messages.append((time.monotonic(), server.recv(4096)))

    try:
        collect(1.0)
        assert any(m.startswith(b"READY=1") for _, m in messages)
        assert any(m == b"WATCHDOG=1" for _, m in messages)
        reader.insert(handler)  # the read now hangs for 3 s
        time.sleep(0.5)
        wedged_from = time.monotonic() + 1.2  # stale after max(2 x read_timeout, watchdog) = 1 s
        collect(2.0)
        assert not [m for t, m in messages if t > wedged_from and m == b"WATCHDOG=1"]
    finally:
        agent.stop_event.set()
        reader.close()
        runner.join(timeout=10)
        server.close()
