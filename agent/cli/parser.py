"""The command line's parser class and the type of the sub-command tables each family's ``register`` fills.

``Parser`` is argparse with one addition: a usage error of a ``--json`` command line also prints the
error object. Every sub-parser is made by a ``Parser`` (argparse uses the parent's class), so the
tables that ``build_parser`` hands to ``register(sub, groups)`` are ``SubParsers``.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, TypeAlias

from idstation.agent.cli.exitcodes import Exit

__all__ = ["Parser", "SubParsers"]


class Parser(argparse.ArgumentParser):
    """argparse with one addition: a usage error of a ``--json`` command line also prints the error object."""

    json_wanted = False  # set by main() from the raw arguments, before parsing

    def error(self, message: str) -> NoReturn:
        if Parser.json_wanted:
            from idstation.agent.cli.common import print_json

            print_json({"ok": False, "error": "bad_input", "message": message, "exit_code": int(Exit.USAGE)})
            sys.stdout.flush()
        super().error(message)  # usage on stderr, exit 2


# argparse._SubParsersAction is generic only to the type checker (typeshed), hence the string.
SubParsers: TypeAlias = "argparse._SubParsersAction[Parser]"
