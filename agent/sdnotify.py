"""systemd's notify protocol (sd_notify(3)) without a dependency.

With ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a filesystem path or, with a leading ``@``,
an abstract socket); the service sends newline-separated ``KEY=VALUE`` datagrams: ``READY=1``
once it serves, ``WATCHDOG=1`` at least every ``WATCHDOG_USEC/2``, ``STATUS=...`` for
``systemctl status``, ``STOPPING=1`` on the way out. Without the variable every call is a no-op,
so the daemon runs the same in a terminal.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self.watchdog_s = self._watchdog(env)
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)  # never let a busy supervisor stall the daemon

    @staticmethod
    def _watchdog(env: Mapping[str, str]) -> float | None:
        """Seconds between WATCHDOG=1 pings systemd expects, when the watchdog is for this process."""
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines (``ready=1`` → ``READY=1``); False when not under systemd or it failed."""
        if self._sock is None:
            return False
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            self._sock.sendto(message, self._address)
        except OSError as exc:
            log.warning("sd_notify_failed", error=type(exc).__name__)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify(ready=1, status=status) if status else self.notify(ready=1)

    def status(self, text: str) -> bool:
        return self.notify(status=text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def stopping(self) -> bool:
        return self.notify(stopping=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
