"""What every command module shares: JSON output, the failure report, state directories, secrets.

A handler returns an exit code or raises a typed error; ``report_failure`` (called by the one
catch-all in ``agent/cli/__init__.py``) turns the error into its exit code (``exitcodes.TABLE``),
one line on stderr and, with ``--json``, one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from idstation.agent.cli.exitcodes import INTERNAL, entry_for
from idstation.hal.errors import IdstationError
from idstation.hal.storage import DEFAULT_STATE_DIR
from idstation.mqtt.central.dedupe import SYSTEM_STATE_DIR as DEFAULT_CENTRAL_DIR

__all__ = [
    "DEFAULT_CENTRAL_DIR",
    "DEFAULT_STATE_DIR",
    "central_dir",
    "print_json",
    "read_secret",
    "report_failure",
    "state_dir",
]


# How a command names its error in the --json failure object: "kind" (read-card, card: snake_case
# from the table, docs/cli/card.md) or "class" (provision, central: the exception class, docs/cli/provision.md).
ERROR_STYLE = "error_style"


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n")


def state_dir(args: argparse.Namespace) -> Path:
    """``--state-dir``, else ``$IDSTATION_STATE_DIR``, else /var/lib/idstation."""
    return Path(getattr(args, "state_dir", None) or os.environ.get("IDSTATION_STATE_DIR") or DEFAULT_STATE_DIR)


def central_dir(args: argparse.Namespace) -> Path:
    """``--dir``, else ``$IDSTATION_CENTRAL_DIR``, else /var/lib/idstation-central."""
    return Path(getattr(args, "dir", None) or os.environ.get("IDSTATION_CENTRAL_DIR") or DEFAULT_CENTRAL_DIR)


def read_secret(value: str | None, path: str | None, env: str) -> str | None:
    """A secret given inline, in a file (first line, stripped) or in the environment variable ``env``."""
    if value is not None:
        return value
    if path is not None:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(env)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}" if exc.filename else (exc.strerror or "")
    return str(exc)


def report_failure(args: argparse.Namespace, exc: BaseException, *, debug: bool = False) -> int:
    """Exit code for ``exc``; one line on stderr; the --json failure object on stdout.

    Domain errors (``IdstationError``) and files (``OSError``) carry their message, which never holds
    citizen data. Anything else is a bug: exit 70 with the error's type only (its text might quote
    data), and the traceback only at ``--log-level debug``.
    """
    entry = entry_for(exc)
    name = type(exc).__name__
    known = entry is not INTERNAL and isinstance(exc, IdstationError | OSError)
    message = (_message(exc) or name) if known else f"unexpected {name}"
    style = getattr(args, ERROR_STYLE, "kind")
    if getattr(args, "json", False):
        label = name if style == "class" and known else entry.kind
        print_json({"ok": False, "error": label, "message": message, "exit_code": int(entry.code)})
    if not known:
        print(f"idstation: internal error: {name} (exit 70; --log-level debug shows the traceback)", file=sys.stderr)
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
    elif style == "class":
        print(f"idstation: {name}: {message}", file=sys.stderr)
    else:
        print(f"error ({entry.kind}): {message}", file=sys.stderr)
    return int(entry.code)
