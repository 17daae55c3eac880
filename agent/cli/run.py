"""``idstation run``, ``idstation demo``, ``idstation status`` and ``idstation config check``.

Handlers import the daemon lazily, so ``idstation --help`` stays light. Exit codes: agent/cli/exitcodes.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from idstation.agent.cli.exitcodes import Exit, UsageError
from idstation.agent.cli.parser import SubParsers


def register(sub: SubParsers, groups: dict[str, SubParsers]) -> None:
    """Add this family's commands to the parser."""
    run = sub.add_parser("run", help="the daemon: read cards, publish events (systemd Type=notify)")
    run.add_argument("--config", default=None, help="TOML file (default /etc/idstation/idstation.toml)")
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="one-command demo: embedded broker, simulated box, central listener")
    demo.add_argument("--taps", type=int, default=5, help="how many card placements (default 5)")
    demo.add_argument("--outage", action="store_true", help="cut the broker for a while mid-run, then restore it")
    demo.add_argument("--json", action="store_true", help="one JSON line per accepted event, then a summary object")
    demo.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"), default="auto", help="embedded broker")
    demo.add_argument("--timeout", type=float, default=90.0, help="give up after this many seconds (default 90)")
    demo.add_argument(
        "--keep-dir",
        metavar="DIR",
        help="run in DIR (absent or empty) and keep it: keys, registry, centre state, box identity",
    )
    demo.add_argument(
        "--serve", action="store_true", help="with the HTTP service, cards placed until stopped (docs/service.md)"
    )
    demo.add_argument("--port", type=int, default=8080, help="with --serve: the service's port on 127.0.0.1 (8080)")
    demo.set_defaults(func=_demo)

    status = sub.add_parser("status", help="the local daemon's status (from <state_dir>/status.json)")
    status.add_argument("--config", default=None, help="TOML file (for state_dir)")
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    status.set_defaults(func=_status)

    check = groups["config"].add_parser("check", help="validate the configuration; name each wrong key and why")
    check.add_argument("--config", default=None, help="TOML file (default /etc/idstation/idstation.toml)")
    check.add_argument("--json", action="store_true", help='{"ok": bool, "problems": [{"key", "reason", "source"}]}')
    check.set_defaults(func=_config_check)


def _run(args: argparse.Namespace) -> int:
    from idstation.agent.config import ConfigInvalid, load_config
    from idstation.agent.daemon import run_daemon

    try:
        cfg = load_config(args.config)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            print(f"config: {problem}", file=sys.stderr)
        return Exit.CONFIG_ERROR
    from idstation.provisioning.identity import load_identity

    return run_daemon(cfg, lambda: load_identity(cfg.state_dir), log_level=getattr(args, "log_level", None))


def _demo(args: argparse.Namespace) -> int:
    if args.serve:
        if not 0 < args.port < 65536:
            raise UsageError("demo: --port must be 1-65535")
        from idstation.agent.sim.demo_serve import run_demo_serve

        return run_demo_serve(port=args.port, broker=args.broker)
    if args.taps < 1 or args.taps > 1000:
        raise UsageError("demo: --taps must be 1-1000")
    from idstation.agent.sim.demo import run_demo

    return run_demo(
        taps=args.taps,
        outage=args.outage,
        as_json=args.json,
        broker=args.broker,
        timeout=args.timeout,
        keep_dir=args.keep_dir,
    )


def _status(args: argparse.Namespace) -> int:
    from idstation.agent.config import ConfigInvalid, load_config
    from idstation.agent.status import read_status, render_status

    try:
        cfg = load_config(args.config)
        doc = read_status(cfg.state_dir, cfg.status.interval_s)
    except ConfigInvalid as exc:  # each problem on stderr; the catch-all gives exit 8 and the --json object
        for problem in exc.problems:
            print(f"config: {problem}", file=sys.stderr)
        raise
    print(json.dumps(doc, ensure_ascii=False) if args.json else render_status(doc))
    return Exit.OK if doc.get("running") else Exit.FAILED


def _config_check(args: argparse.Namespace) -> int:
    from idstation.agent.config import check, resolve_path

    problems = check(args.config)
    path = resolve_path(args.config)
    if args.json:
        doc = {
            "ok": not problems,
            **({"error": "config_error", "exit_code": int(Exit.CONFIG_ERROR)} if problems else {}),
            "file": str(path) if path else None,
            "problems": [{"key": p.key, "reason": p.reason, "source": p.source} for p in problems],
        }
        print(json.dumps(doc, ensure_ascii=False))
    elif problems:
        for problem in problems:
            print(f"{problem.key}: {problem.reason} ({problem.source})")
    else:
        print(f"ok: {path or 'built-in defaults'}")
    return Exit.CONFIG_ERROR if problems else Exit.OK
