"""The embedded store under its old name: duplicates, ``seq`` gaps and replays in one SQLite file.

The central store (:mod:`idstation.mqtt.central.store`) replaced the de-duplication file: an
event id already held is a duplicate, streams ``(device_id, key_id)`` keep their highest ``seq``
and open gaps, a new event id with a used ``seq`` is a replay (see ``store/base.py``). This
module keeps what other code named here: :class:`DedupeStore` (the SQLite store at a path,
migrated on open, with the one-event :meth:`DedupeStore.observe` of old), ``Verdict``,
``Observation`` (now the store's ``Outcome``), where the state lives by default
(:func:`default_state_path`) and the warning for a volatile location (:func:`is_volatile`).
A de-duplication file from before the store upgrades in place (its streams and gaps are kept).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import structlog
from idstation.mqtt.central.store.base import Incoming, Verdict
from idstation.mqtt.central.store.base import Outcome as Observation
from idstation.mqtt.central.store.sqlite import SqliteStore
from idstation.mqtt.errors import EventRejected

log = structlog.get_logger(__name__)

__all__ = ["DedupeStore", "Observation", "Verdict", "default_state_path", "is_volatile"]

MAX_SEQ = 2**53  # the wire schema's bound (events.MAX_SEQ); SQLite integers are signed 64-bit
SYSTEM_STATE_DIR = Path("/var/lib/idstation-central")


def default_state_path(group: str) -> Path:
    """Where the state lives when no path is given: persistent, never the temporary directory.

    ``$IDSTATION_CENTRAL_STATE_DIR``, else ``/var/lib/idstation-central`` for root (systemd's
    ``StateDirectory=idstation-central`` makes it for a service user too), else
    ``$XDG_STATE_HOME/idstation-central`` (``~/.local/state/idstation-central``).
    """
    override = os.environ.get("IDSTATION_CENTRAL_STATE_DIR")
    if override:
        base = Path(override)
    elif os.geteuid() == 0 or os.access(SYSTEM_STATE_DIR, os.W_OK):
        base = SYSTEM_STATE_DIR
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = Path(xdg) / "idstation-central"
    return base / f"{group}.sqlite"


def is_volatile(path: Path) -> bool:
    """True when ``path`` lies on a file system that a reboot empties (tmp, /dev/shm, /run)."""
    resolved = path.resolve()
    roots = {Path(tempfile.gettempdir()).resolve(), Path("/tmp"), Path("/dev/shm"), Path("/run"), Path("/var/tmp")}  # noqa: S108
    return any(resolved.is_relative_to(root) for root in roots)


class DedupeStore(SqliteStore):
    """The embedded store at ``path`` (migrated on open). Safe across threads and processes."""

    def __init__(self, path: str | Path, *, retention_s: float = 30 * 86400.0) -> None:
        path = Path(path)
        if is_volatile(path):
            log.warning(
                "central_state_not_persistent",
                path=str(path),
                consequence="after a reboot or cleanup, already accepted events are accepted again",
            )
        super().__init__(path)
        self.retention_s = retention_s
        self.migrate()

    def observe(self, event_id: str, device_id: str, key_id: str, seq: int, data: bool) -> Observation:
        """Record one event known only by its ids (no frame) and classify it (one transaction)."""
        if not (isinstance(seq, int) and 0 <= seq <= MAX_SEQ):
            raise EventRejected("bad_header", "seq out of range")  # never reaches SQLite's 64-bit integers
        kind = "identity" if data else "heartbeat"
        event = Incoming(event_id, device_id, key_id, seq, kind, "", "", "", time.time(), {}, b"")
        return self.record([event])[0]

    def prune(self, now: float | None = None) -> int:
        """Delete events older than the retention (stream state is kept)."""
        return self.purge((now or time.time()) - self.retention_s)
