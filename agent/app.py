"""The agent: drives the placement machine with the reader, the camera and the event sink.

Theory of operation. One worker thread owns the reader and the camera and runs placements one
after another: wait for a card, feed ``flow.Placement`` its events, execute the actions it
returns (look for the QR in camera frames until a deadline, read the chip, publish, signal the
clerk), then wait for the card to leave (read once per placement). The main thread supervises
(``agent/daemon.py``): it answers SIGTERM, pings the systemd watchdog only while the worker's
heartbeat is fresh (a hung reader means systemd restarts us), and publishes the status.

``except Exception`` lives here only: a bug in one placement becomes a read_failed
``internal_error`` event and the next card works. Personal data stays in local variables: logs
carry reasons, statuses and timings only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from idstation.agent import flow
from idstation.agent.config import Config
from idstation.hal.errors import CameraError, DeviceError, IdstationError
from idstation.hal.ports import Camera, CardConnection, CardReader, Indicator, Signal

log = structlog.get_logger(__name__)


class EventSink(Protocol):
    """Where events go (the MQTT publisher with its durable outbox, or a test fake)."""

    def identity(self, status: str, qr_text: str | None, result: object | None) -> None: ...

    def read_failed(self, reason: str) -> None: ...

    def status(self, doc: dict[str, Any]) -> None: ...

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


# Reads the chip with the keys derived from the QR text: (verdict, result); raises IdstationError.
ChipReadFn = Callable[[CardConnection, str], tuple[str, object]]
# Returns the QR text of a citizen-card QR in the frame, else None.
QrFn = Callable[[Any], str | None]


@dataclass
class Health:
    """What the status message reports; written by the worker, read by the supervisor."""

    reader: str = "starting"
    camera: str = "starting"
    placements: int = 0
    last_read_at: float | None = None  # wall clock of the last published event
    last_outcome: str | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    beat: float = field(default_factory=time.monotonic)


class Agent:
    """One reader, one camera, one placement machine."""

    def __init__(  # noqa: PLR0917 (the agent's parts, in the order of the architecture)
        self,
        cfg: Config,
        reader: CardReader,
        camera: Camera | None,
        indicator: Indicator,
        sink: EventSink,
        read_chip: ChipReadFn,
        find_qr: QrFn,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.reader = reader
        self.camera = camera
        self.indicator = indicator
        self.sink = sink
        self.read_chip = read_chip
        self.find_qr = find_qr
        self.clock = clock
        self.machine = flow.Placement(qr_budget_s=cfg.camera.qr_budget_s, qr_memory_s=cfg.camera.qr_memory_s)
        self.health = Health()
        self.stop_event = threading.Event()
        self.on_outcome: Callable[[str], None] | None = None  # tests and the demo count outcomes
        self._last_scan = float("-inf")
        from idstation.hal.camera_change import ChangeDetector

        self._changes = ChangeDetector()

    # ---- the worker ----------------------------------------------------------------------------
    def start_devices(self) -> None:
        """Start the camera (a dead camera is reported, not fatal: cards still get read_failed)."""
        self.health.reader = "ok"
        if self.camera is None:
            self.health.camera = "none"
            return
        try:
            self.camera.start()
            self.health.camera = "ok"
        except CameraError as exc:
            self.health.camera = "failed"
            log.error("camera_start_failed", error=str(exc))

    def work(self) -> None:
        """The worker loop: placements until ``stop_event``."""
        self.indicator.signal(Signal.IDLE, "ready: place a card")
        while not self.stop_event.is_set():
            self.health.beat = time.monotonic()
            try:
                conn = self.reader.wait_for_card(self.cfg.reader.poll_s)
            except DeviceError as exc:
                self._reader_down(exc)
                continue
            self.health.reader = "ok"
            if conn is not None:
                self._placement(conn)
            else:
                try:
                    self._idle_scan()
                except Exception as exc:  # a bad frame between cards must not stop the worker
                    log.exception("idle_scan_crashed", error_type=type(exc).__name__)

    def _idle_scan(self) -> None:
        """Between cards: now and then, a changed frame is searched for a QR shown before placement."""
        now = self.clock()
        self.machine.expire(now)
        interval = self.cfg.camera.idle_scan_s
        if self.camera is None or interval <= 0 or now - self._last_scan < interval:
            return
        self._last_scan = now
        try:
            frame = self.camera.read(0.05)
        except CameraError as exc:
            self._camera_failed(exc)
            return
        if frame is None or not self._changes.changed(frame.gray):
            return
        text = self.find_qr(frame)
        if text is not None:
            log.info("qr_seen_before_placement")
            self.machine.handle(flow.QrDecoded(text, self.clock()))

    def _reader_down(self, exc: DeviceError) -> None:
        if self.health.reader != "failed":
            log.error("reader_unavailable", error=str(exc))
            self.indicator.signal(Signal.ERROR, "FAULT: reader not available")
        self.health.reader = "failed"
        self.stop_event.wait(min(5.0, 4 * self.cfg.reader.poll_s))

    def _placement(self, conn: CardConnection) -> None:
        self.health.placements += 1
        started = self.clock()
        log.info("card_placed", placement=self.health.placements)
        try:
            self._run(flow.CardPresent(started), conn)
            self._await_removal(conn)
        except Exception as exc:  # the supervisor boundary: one bad placement never stops the box
            log.exception("placement_crashed", error_type=type(exc).__name__)
            self._drain(self.machine.crash(), conn)
            self._await_removal(conn)
        finally:
            conn.close()
            self.machine.state = flow.State.IDLE

    def _run(self, event: flow.Event, conn: CardConnection) -> None:
        """Feed one event and execute the actions, feeding back the events they produce."""
        self._drain(self.machine.handle(event), conn)

    def _drain(self, actions: list[flow.Action], conn: CardConnection) -> None:
        pending: deque[flow.Action] = deque(actions)
        while pending:
            action = pending.popleft()
            follow = self._execute(action, conn)
            if follow is not None:
                pending.extend(self.machine.handle(follow))

    def _execute(self, action: flow.Action, conn: CardConnection) -> flow.Event | None:
        if isinstance(action, flow.Indicate):
            self.indicator.signal(action.signal, action.message)
        elif isinstance(action, flow.LookForQr):
            return self._look_for_qr(action.deadline)
        elif isinstance(action, flow.ReadChip):
            return self._read(conn, action)
        elif isinstance(action, flow.PublishIdentity):
            return self._store(lambda: self.sink.identity(action.status, action.qr_text, action.result), action.status)
        elif isinstance(action, flow.PublishReadFailed):
            return self._store(lambda: self.sink.read_failed(action.reason), action.reason)
        return None

    def _store(self, submit: Callable[[], None], outcome: str) -> flow.Stored:
        """Put the event in the outbox; the machine signals the clerk from the answer (FAULT if refused)."""
        try:
            submit()
        except (IdstationError, OSError) as exc:
            log.error("event_not_stored", outcome=outcome, error_type=type(exc).__name__)
            self.health.last_outcome = flow.NOT_STORED
            return flow.Stored(ok=False)
        self._outcome(outcome)
        return flow.Stored(ok=True)

    def _look_for_qr(self, deadline: float) -> flow.Event:
        """Frames until a citizen QR, the deadline, a dead camera, or the card leaving."""
        if self.camera is None:
            return flow.QrTimeout(self.clock())
        frames = 0
        while self.clock() < deadline and not self.stop_event.is_set():
            if self.reader.wait_for_removal(0):
                return flow.CardGone(self.clock())
            try:
                frame = self.camera.read(min(0.5, max(0.01, deadline - self.clock())))
            except CameraError as exc:
                self._camera_failed(exc)
                return flow.CameraFailed(self.clock())
            self.health.camera = "ok"
            if frame is None:
                continue
            frames += 1
            text = self.find_qr(frame)
            if text is not None:
                log.info("qr_found", frames=frames)
                return flow.QrDecoded(text, self.clock())
        log.info("qr_not_found", frames=frames)
        return flow.QrTimeout(self.clock())

    def _camera_failed(self, exc: CameraError) -> None:
        log.error("camera_failed", error=str(exc))
        self.health.camera = "failed"
        if self.camera is not None:  # try to bring it back for the next card
            try:
                self.camera.stop()
                self.camera.start()
                self.health.camera = "restarted"
            except (CameraError, OSError) as again:
                log.error("camera_restart_failed", error=str(again))

    def _read(self, conn: CardConnection, action: flow.ReadChip) -> flow.Event:
        started = self.clock()
        try:
            verdict, result = self.read_chip(conn, action.qr_text)
        except IdstationError as exc:
            reason = flow.reason_for(exc)
            log.info("chip_read_failed", reason=reason, error_type=type(exc).__name__, fallback=action.fallback)
            return flow.ReadFailed(reason)
        log.info("chip_read", verdict=verdict, ms=round((self.clock() - started) * 1000), fallback=action.fallback)
        return flow.ReadDone(verdict, result)

    def _outcome(self, outcome: str) -> None:
        self.health.last_outcome = outcome
        self.health.last_read_at = time.time()
        self.health.outcomes[outcome] = self.health.outcomes.get(outcome, 0) + 1
        log.info("placement_done", outcome=outcome, placement=self.health.placements)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _await_removal(self, conn: CardConnection) -> None:
        """The card stays: nothing more happens until it leaves (read once per placement)."""
        while not self.stop_event.is_set():
            self.health.beat = time.monotonic()
            try:
                if self.reader.wait_for_removal(self.cfg.reader.poll_s):
                    break
            except DeviceError as exc:
                self._reader_down(exc)
                break
        self._run(flow.CardGone(self.clock()), conn)

    # ---- status --------------------------------------------------------------------------------
    def status_doc(self) -> dict[str, Any]:
        from idstation.agent.status import status_document

        return status_document(self)


# ---- the supervisor ------------------------------------------------------------------------------
