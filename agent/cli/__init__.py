"""``idstation`` command line: a thin dispatcher over the libraries (agent, provisioning, mqtt.central).

Each command family is a module of this package with ``register(sub, groups)``; handlers import
heavy libraries lazily so that ``idstation --help`` and the daemon's start stay light. A handler
returns an exit code or raises a typed error: the one catch-all in ``main`` maps it through
``exitcodes.TABLE`` (an unexpected exception exits 70 naming only its type). Nothing but the
``idstation`` entry point imports this package.

Adding a command: in the family's module (say ``central.py``), ``groups["central"].add_parser(...)``
inside ``register``, ``p.set_defaults(func=handler)``; the handler takes the ``argparse.Namespace``,
calls a library function and prints; ``--json`` commands print one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from idstation.agent.cli.exitcodes import Exit
from idstation.agent.cli.parser import Parser, SubParsers

# (module, groups it adds commands to). Order is the order in --help.
COMMAND_MODULES = (
    "idstation.agent.cli.card",  # read-card, card serve | make-profile | inspect
    "idstation.agent.cli.qr",  # decode-qr, camera-test
    "idstation.agent.cli.run",  # run, demo, status, config check
    "idstation.agent.cli.provision",  # provision init | apply | enroll | renew | show, selftest
    "idstation.agent.cli.central",  # central listen
    "idstation.agent.cli.central_ca",  # central init-ca | enroll | receipt-key | revoke
    "idstation.agent.cli.central_store",  # central migrate | export | purge
    "idstation.agent.cli.central_service",  # central serve | add-client | remove-client | audit
)

GROUPS = {
    "card": "virtual cards and card diagnostics",
    "central": "the central server side: listen, enrol devices",
    "provision": "turn a blank box into a trusted counter box",
    "config": "configuration tools",
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="idstation",
        description="Counter reader box for Vietnamese chip ID cards.",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="debug, info, warning, error (default: info; env IDSTATION_LOG_LEVEL); debug also shows tracebacks",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, SubParsers] = {}
    for name, help_text in GROUPS.items():
        group_parser = sub.add_parser(name, help=help_text)
        groups[name] = group_parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
        group_parser.set_defaults(func=_group_help(group_parser))
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub, groups)
    return parser


def _group_help(group_parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(_args: argparse.Namespace) -> int:
        group_parser.print_help(sys.stderr)
        return Exit.USAGE

    return show


def _debug(args: argparse.Namespace) -> bool:
    level = args.log_level or os.environ.get("IDSTATION_LOG_LEVEL") or ""
    return level.strip().lower() == "debug"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    Parser.json_wanted = "--json" in (sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return Exit.USAGE
    code = dispatch(args)
    sys.stdout.flush()
    return code


def dispatch(args: argparse.Namespace) -> int:
    """Run ``args.func(args)`` under the command line's one catch-all; its exit code."""
    try:
        from idstation.agent.logging import configure_logging

        configure_logging(level=args.log_level)
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the one catch-all: typed errors -> their exit code, anything else -> 70
        from idstation.agent.cli.common import report_failure

        return report_failure(args, exc, debug=_debug(args))
