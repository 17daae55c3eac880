"""Key-value log calls on the standard library's ``logging``, for modules that must not depend on a
logging framework (the eMRTD and QR cores are pure: no structlog, no threads, no sockets).

``log = get_logger(__name__)``; ``log.info("chip_opened", access="PACE-CAN")`` emits the stdlib
record ``chip_opened access=PACE-CAN`` on logger ``__name__``, with the fields also kept in
``record.fields``. The daemon's ``configure_logging`` routes stdlib records through its redaction.
Callers pass event names and technical fields only (status words, counts, step names), never
citizen data.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["KvLogger", "get_logger"]


class KvLogger:
    """``debug/info/warning/error(event, **fields)`` over a stdlib logger."""

    __slots__ = ("_logger",)

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            text = " ".join([event, *(f"{key}={value}" for key, value in fields.items())])
            self._logger.log(level, "%s", text, extra={"fields": {"event": event, **fields}}, stacklevel=3)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)


def get_logger(name: str) -> KvLogger:
    return KvLogger(name)
