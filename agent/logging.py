"""structlog configuration: JSON lines to stderr (journald picks them up).

Personal data is redacted by a processor before rendering (see ``redact``).
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: str | None = None, stream=None) -> None:  # type: ignore[no-untyped-def]
    """Route structlog and stdlib logging to ``stream`` (stderr) as JSON lines."""
    name = (level or os.environ.get("IDSTATION_LOG_LEVEL") or "info").upper()
    numeric = getattr(logging, name, logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=stream or sys.stderr, format="%(levelname)s %(name)s %(message)s")
