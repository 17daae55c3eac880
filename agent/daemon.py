"""The daemon around the agent: ``run_daemon`` (``idstation run``) and ``Daemon``, the supervisor.

The worker thread runs ``Agent.work`` (agent/app.py); the main thread answers SIGTERM/SIGINT,
pings the systemd watchdog only while the worker's heartbeat is fresh (a hung reader means
systemd restarts us), shows the clerk's line in ``systemctl status`` and publishes the status
every ``status.interval_s``. A worker that dies is exit 70 (systemd restarts the unit).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from idstation.agent.app import Agent
from idstation.agent.config import Config
from idstation.agent.exitcodes import Exit
from idstation.agent.sdnotify import Notifier
from idstation.hal.errors import IdstationError

__all__ = ["Daemon", "run_daemon"]

log = structlog.get_logger("idstation.agent.app")


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
