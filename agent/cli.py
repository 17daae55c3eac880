"""``idstation`` command line: a thin dispatcher.

Each command family lives in its own module with ``register(subparsers, groups)``; handlers
import heavy libraries lazily so that ``idstation --help`` and the daemon's start stay light.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from idstation.agent.exitcodes import Exit

# (module, groups it adds commands to). Order is the order in --help.
COMMAND_MODULES = (
    "idstation.agent.cli_card",  # read-card, card serve | make-profile | inspect
    "idstation.agent.cli_qr",  # decode-qr, camera-test
    "idstation.agent.cli_run",  # run, demo, status, config check
    "idstation.agent.cli_central",  # central listen
    "idstation.provisioning.cli",  # provision init | apply | renew, selftest, central enroll | revoke
)

GROUPS = {
    "card": "virtual cards and card diagnostics",
    "central": "the central server side: listen, enrol devices",
    "provision": "turn a blank box into a trusted counter box",
    "config": "configuration tools",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idstation",
        description="Counter reader box for Vietnamese chip ID cards.",
    )
    parser.add_argument(
        "--log-level", default=None, help="debug, info, warning, error (default: info; env IDSTATION_LOG_LEVEL)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for name, help_text in GROUPS.items():
        group_parser = sub.add_parser(name, help=help_text)
        groups[name] = group_parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
        group_parser.set_defaults(func=_group_help(group_parser))
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub, groups)
    return parser


def _group_help(group_parser: argparse.ArgumentParser):  # type: ignore[no-untyped-def]
    def show(_args: argparse.Namespace) -> int:
        group_parser.print_help(sys.stderr)
        return Exit.USAGE

    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return Exit.USAGE
    from idstation.agent.logging import configure_logging

    configure_logging(level=args.log_level)
    try:
        code = int(args.func(args))
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
