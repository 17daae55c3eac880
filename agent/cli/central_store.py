"""``idstation central migrate | export | purge``: the central store's commands (docs/cli/central.md).

Thin: each handler opens the store (:func:`idstation.mqtt.central.store.open_store`), calls the
library (:mod:`idstation.mqtt.central.export`, :mod:`idstation.mqtt.central.retention`) and prints.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from idstation.agent.cli.common import print_json
from idstation.agent.cli.exitcodes import Exit, UsageError
from idstation.agent.cli.parser import SubParsers

STORE_HELP = "sqlite:///path or postgresql://user@host:port/database"


def register(sub: SubParsers, groups: dict[str, SubParsers]) -> None:
    central = groups["central"]
    p = central.add_parser("migrate", help="create or upgrade the central store's schema")
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_migrate)

    p = central.add_parser("export", help="accepted events from the store in commit order, with a resumable cursor")
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--after", type=int, default=0, metavar="CURSOR", help="print events after this cursor (default 0)")
    p.add_argument("--follow", action="store_true", help="keep printing new events as they are committed")
    p.add_argument("--json", action="store_true", help="one JSON object per event (the only format)")
    p.add_argument("--full", action="store_true", help="include face, raw data groups and EF.SOD")
    p.add_argument("--key", metavar="FILE", help="central X25519 private key: open identity events (else sealed)")
    p.add_argument("--poll", type=float, default=0.5, metavar="S", help="--follow: seconds between polls")
    p.set_defaults(func=_export)

    p = central.add_parser("purge", help="delete accepted events older than a number of days (stream state is kept)")
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--older-than", required=True, type=float, metavar="DAYS", help="age in days (received time)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_purge)


def _migrate(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.store import open_store

    store = open_store(args.store)
    try:
        before = store.schema_version()
        after = store.migrate()
    finally:
        store.close()
    doc = {"ok": True, "store": store.url, "schema_version": after, "applied": after - before}
    if args.json:
        print_json(doc)
    else:
        print(f"{store.url}: schema version {after} ({after - before} migration(s) applied)")
    return Exit.OK


def _export(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.export import export_lines
    from idstation.mqtt.central.store import open_store
    from idstation.mqtt.seal import load_central_private_key

    if args.after < 0 or args.poll <= 0:
        raise UsageError("--after is a cursor >= 0 and --poll a positive number of seconds")
    key = load_central_private_key(args.key) if args.key else None
    store = open_store(args.store)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if store.schema_version() == 0:
            raise UsageError("the store has no schema: run idstation central migrate --store URL")
        for line in export_lines(
            store, args.after, central_key=key, full=args.full, follow=args.follow, poll_s=args.poll, stop=stop
        ):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        store.close()
    return Exit.OK


def _purge(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.retention import purge_older_than
    from idstation.mqtt.central.store import open_store

    if args.older_than < 0:
        raise UsageError("--older-than is a number of days >= 0")
    store = open_store(args.store, migrate=True)
    try:
        removed = purge_older_than(store, args.older_than)
    finally:
        store.close()
    if args.json:
        print_json({"ok": True, "removed": removed, "older_than_days": args.older_than})
    else:
        print(f"{removed} event(s) older than {args.older_than:g} days removed")
    return Exit.OK
