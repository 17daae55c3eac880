"""``idstation central serve | add-client | remove-client | audit``: the centre's HTTP service (docs/service.md).

Thin: each handler calls the library (:mod:`idstation.mqtt.central.service`) and prints.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from idstation.agent.cli.exitcodes import Exit, UsageError
from idstation.agent.cli.parser import SubParsers

STORE_HELP = "sqlite:///path or postgresql://user@host:port/database"


def register(sub: SubParsers, groups: dict[str, SubParsers]) -> None:
    central = groups["central"]
    p = central.add_parser(
        "serve",
        help="the HTTP service: clerk pages, identity API and stream, fleet",
        description="Serve the centre's store over HTTP: per counter the clerk's page, the latest identity and a "
        "server-sent-events stream; for operators the fleet page and API. Every API request needs a bearer token "
        "from `central add-client`.",
    )
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--registry", required=True, metavar="DIR", help="device registry directory")
    p.add_argument("--key", required=True, metavar="FILE", help="central X25519 private key (PKCS#8 PEM)")
    p.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to serve on")
    p.add_argument("--clients", required=True, metavar="FILE", help="clients file (central add-client)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate chain (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument(
        "--freshness", type=float, default=600.0, metavar="S", help="show identities up to S seconds old (default 600)"
    )
    p.add_argument("--with-listener", action="store_true", help="also run a central listener in this process")
    p.add_argument("--broker", metavar="URL", help="with --with-listener: mqtt://host:port or mqtts://host:port")
    p.set_defaults(func=_serve)

    p = central.add_parser("add-client", help="create a client of the HTTP service and print its token once")
    p.add_argument("--clients", required=True, metavar="FILE", help="clients file (created when missing)")
    p.add_argument("--name", required=True, metavar="NAME", help="client name (1-128 of A-Z a-z 0-9 . _ -)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--counter",
        action="append",
        metavar="SITE/COUNTER",
        help="a counter it may read (repeatable; site and counter each 1-64 of A-Z a-z 0-9 . _ -)",
    )
    who.add_argument("--operator", action="store_true", help="an operator: the fleet, never personal data")
    p.add_argument("--json", action="store_true", help='print {"client": NAME, "token": TOKEN}')
    p.set_defaults(func=_add_client)

    p = central.add_parser("remove-client", help="remove a client of the HTTP service (its token stops working)")
    p.add_argument("--clients", required=True, metavar="FILE", help="clients file")
    p.add_argument("--name", required=True, metavar="NAME", help="client name")
    p.set_defaults(func=_remove_client)

    p = central.add_parser("audit", help="the audit trail: who was shown which identity, where, when")
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--since", metavar="T", help="ISO 8601 time or Unix seconds (default: everything)")
    p.add_argument("--json", action="store_true", help="one JSON object per entry and line")
    p.set_defaults(func=_audit)


def _serve(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.service.errors import ServiceError
    from idstation.mqtt.central.service.server import ServeOptions, parse_listen, serve

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.with_listener != bool(args.broker):
        raise UsageError("--with-listener and --broker URL go together")
    if not args.freshness > 0:
        raise UsageError("--freshness is a number of seconds > 0")
    try:
        parse_listen(args.listen)
    except ServiceError as exc:
        raise UsageError(str(exc)) from None
    opts = ServeOptions(
        args.store, Path(args.registry), Path(args.key), args.listen, Path(args.clients),
        Path(args.tls_cert) if args.tls_cert else None, Path(args.tls_key) if args.tls_key else None,
        args.freshness, args.with_listener, args.broker,
    )  # fmt: skip
    serve(opts)
    return Exit.OK


def _add_client(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.service.clients import ClientsFile

    token = ClientsFile(args.clients).add(args.name, args.counter or (), operator=args.operator)
    if args.json:
        print(json.dumps({"client": args.name, "token": token}), flush=True)
    else:
        print(f"client {args.name}: its token (shown only now; keep it secret):\n{token}", flush=True)
    return Exit.OK


def _remove_client(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.service.clients import ClientsFile

    if not ClientsFile(args.clients).remove(args.name):
        raise UsageError(f"no client named {args.name!r}")
    print(f"client {args.name} removed", flush=True)
    return Exit.OK


def _audit(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.service.audit import audit_entries, parse_since
    from idstation.mqtt.central.service.errors import ServiceError

    try:
        since = parse_since(args.since)
    except ServiceError as exc:
        raise UsageError(str(exc)) from None
    for entry in audit_entries(args.store, since):
        if args.json:
            print(json.dumps(entry, ensure_ascii=False))
        else:
            print(f"{entry['at']}  {entry['client']}  {entry['endpoint']}  {entry['event_id']}")
    return Exit.OK
