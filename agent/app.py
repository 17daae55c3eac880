"""The daemon: drives the placement machine with the reader, the camera and the event sink.

Theory of operation. One worker thread owns the reader and the camera and runs placements one
after another: wait for a card, feed ``flow.Placement`` its events, execute the actions it
returns (look for the QR in camera frames until a deadline, read the chip, publish, signal the
clerk), then wait for the card to leave (read once per placement). The main thread supervises:
it answers SIGTERM, pings the systemd watchdog only while the worker's heartbeat is fresh (a hung
reader means systemd restarts us), and publishes the status every ``status.interval_s``.

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
from idstation.agent.exitcodes import Exit
from idstation.agent.sdnotify import Notifier
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
class Daemon:
    """Runs an agent's worker thread; answers signals, feeds the watchdog, publishes the status."""

    def __init__(
        self,
        agent: Agent,
        notifier: Notifier,
        on_stop: list[Callable[[], None]] | None = None,
        on_ready: list[Callable[[], None]] | None = None,
    ) -> None:
        self.agent = agent
        self.notifier = notifier
        self.on_stop = on_stop or []
        self.on_ready = on_ready or []
        self.ready_at: float | None = None
        self._outbox_depth: object = "?"

    def install_signals(self) -> None:
        import signal

        def stop(signum: int, _frame: object) -> None:
            log.info("agent_stopping", signal=signal.Signals(signum).name)
            self.agent.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run(self, started: float | None = None) -> int:
        agent, cfg = self.agent, self.agent.cfg
        started = started or time.monotonic()
        agent.start_devices()
        worker = threading.Thread(target=agent.work, name="placement", daemon=True)
        worker.start()
        self.ready_at = time.monotonic()
        self.notifier.ready(status="ready: place a card")
        log.info("agent_ready", ms=round((self.ready_at - started) * 1000), reader=agent.reader.name)
        for hook in self.on_ready:
            hook()
        code = self._supervise(worker, cfg.status.interval_s)
        self._shutdown(worker)
        return code

    def _supervise(self, worker: threading.Thread, interval: float) -> int:
        watchdog = self.notifier.watchdog_s
        tick = min(1.0, watchdog / 4 if watchdog else 1.0)
        stale_after = max(2 * self.agent.cfg.reader.read_timeout_s, watchdog or 0)
        next_status = 0.0
        shown: object = None
        while True:
            last = getattr(self.agent.indicator, "last", None)
            if isinstance(last, tuple) and last != shown:  # the clerk's line, in `systemctl status`
                shown = last
                self.notifier.status(self._status_line())
            if not worker.is_alive() and not self.agent.stop_event.is_set():
                log.error("worker_died")
                return Exit.INTERNAL  # systemd restarts us
            fresh = time.monotonic() - self.agent.health.beat < stale_after
            if fresh:
                self.notifier.watchdog()
            elif watchdog:
                log.error("worker_stalled", stale_s=round(time.monotonic() - self.agent.health.beat))
            if time.monotonic() >= next_status:
                self.publish_status()
                next_status = time.monotonic() + interval
            if self.agent.stop_event.wait(tick):
                break
        return 0

    def publish_status(self) -> None:
        from idstation.agent.status import write_status_file

        doc = self.agent.status_doc()
        try:
            self.agent.sink.status(doc)
            write_status_file(self.agent.cfg.state_dir, doc)
        except (IdstationError, OSError) as exc:
            log.warning("status_failed", error=type(exc).__name__)
        self._outbox_depth = doc.get("outbox", {}).get("depth", "?")
        self.notifier.status(self._status_line())

    def _status_line(self) -> str:
        last = getattr(self.agent.indicator, "last", None)
        clerk = str(last[1] or last[0]) if isinstance(last, tuple) else "running"
        health = self.agent.health
        return (
            f"{clerk} | reader {health.reader}, camera {health.camera}, outbox {self._outbox_depth}, "
            f"{health.placements} placements"
        )

    def _shutdown(self, worker: threading.Thread) -> None:
        from idstation.agent.status import mark_stopped

        self.notifier.stopping()
        self.agent.stop_event.set()
        worker.join(timeout=self.agent.cfg.reader.read_timeout_s + 2)
        for step in [self.agent.sink.close, *self.on_stop]:
            try:
                step()
            except Exception as exc:  # shutdown goes on: the outbox is durable whatever happens here
                log.warning("stop_step_failed", error_type=type(exc).__name__)
        mark_stopped(self.agent.cfg.state_dir)
        self.agent.machine.forget()
        self.notifier.close()
        log.info("agent_stopped", placements=self.agent.health.placements)


def run_daemon(
    cfg: Config,
    load_identity: Callable[[], Any],
    environ: dict[str, str] | None = None,
    log_level: str | None = None,
) -> int:
    """``idstation run``: build everything from the configuration and serve until SIGTERM.

    ``load_identity`` returns the provisioned device identity (the command line hands in
    provisioning's loader). A start failure is logged and raised: the command line's exit-code
    table maps it (configuration and identity 8, devices 7).
    """
    from idstation.agent.logging import configure_logging
    from idstation.agent.wiring import build_agent, tune_malloc

    started = time.monotonic()
    import os

    configure_logging(log_level or os.environ.get("IDSTATION_LOG_LEVEL") or cfg.logging.level)
    tune_malloc()
    try:
        built = build_agent(cfg, identity=load_identity())
    except IdstationError as exc:
        log.error("agent_start_failed", error=str(exc), error_type=type(exc).__name__)
        raise
    daemon = Daemon(built.agent, Notifier(environ), built.on_stop, built.on_ready)
    daemon.install_signals()
    return daemon.run(started)
