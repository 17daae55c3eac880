"""``idstation central listen``: the central server's event listener (see docs/cli/central.md).

``central enroll`` / ``central revoke`` are added to the same group by provisioning/cli.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

from idstation.agent.exitcodes import Exit


def register(sub: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:  # type: ignore[type-arg]
    """Add ``central listen``."""
    p = groups["central"].add_parser(
        "listen",
        help="receive, verify, decrypt and de-duplicate device events",
        description="Subscribe to idstation events, verify each against the device registry, decrypt it and "
        "print one line per accepted event on stdout (rejections and logs go to stderr).",
    )
    p.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--registry", required=True, metavar="DIR", help="device registry directory (empty: accept nothing)")
    p.add_argument("--key", required=True, metavar="FILE", help="central X25519 private key (PKCS#8 PEM)")
    p.add_argument("--group", default="idstation", metavar="NAME", help="shared-subscription group (default idstation)")
    p.add_argument(
        "--no-shared", action="store_true", help="plain subscription even over MQTT 5 (one listener per broker)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per accepted event")
    p.add_argument("--full", action="store_true", help="with --json: include face, raw data groups and EF.SOD")
    p.add_argument("--state", metavar="FILE", help="shared dedupe/sequence SQLite file (default: per group in TMPDIR)")
    p.add_argument("--protocol", choices=("auto", "5", "3.1.1"), default="auto", help="MQTT version (default auto)")
    p.add_argument("--client-id", metavar="ID", help="MQTT client id (stable id = persistent session)")
    p.add_argument("--ca", metavar="FILE", help="mqtts: CA certificate that signed the broker")
    p.add_argument("--cert", metavar="FILE", help="mqtts: client certificate (mTLS)")
    p.add_argument("--client-key", metavar="FILE", help="mqtts: client certificate's private key")
    p.add_argument("--insecure", action="store_true", help="mqtts: do not check the broker's host name")
    p.add_argument("--username", metavar="NAME", help="MQTT user name")
    p.add_argument("--password-file", metavar="FILE", help="file holding the MQTT password")
    p.add_argument("--count", type=int, metavar="N", help="exit after N accepted events")
    p.add_argument("--timeout", type=float, metavar="S", help="exit after S seconds")
    p.add_argument(
        "--connect-timeout", type=float, default=30.0, metavar="S", help="exit 9 if not subscribed within S seconds"
    )
    p.set_defaults(func=_listen)


def _listen(args: argparse.Namespace) -> int:
    import structlog
    from idstation.mqtt.central.listener import AcceptedEvent, CentralListener, event_to_json_line
    from idstation.mqtt.central.registry import Registry, valid_name
    from idstation.mqtt.connection import TlsOptions, parse_broker_url
    from idstation.mqtt.errors import PublishError, RegistryError, SealError

    log = structlog.get_logger("idstation.central")
    try:
        url = parse_broker_url(args.broker)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.USAGE
    if not valid_name(args.group):
        print("error: --group is 1-128 of A-Z a-z 0-9 . _ -", file=sys.stderr)
        return Exit.USAGE
    password = _password(args.password_file)
    if password is False:
        return Exit.CONFIG_ERROR
    tls = TlsOptions(args.ca, args.cert, args.client_key, args.insecure) if url.tls else None
    accepted = 0
    done = threading.Event()

    def on_event(event: AcceptedEvent) -> None:
        nonlocal accepted
        line = event_to_json_line(event, full=args.full) if args.json else _summary(event)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        accepted += 1
        if args.count and accepted >= args.count:
            done.set()

    try:
        registry = Registry(args.registry)
        if not registry.devices():
            log.warning("central_registry_empty", registry=args.registry)
        listener = CentralListener(
            args.broker,
            registry,
            args.key,
            on_event=on_event,
            group=args.group,
            shared=not args.no_shared,
            state_path=args.state,
            tls=tls,
            protocol=args.protocol,
            client_id=args.client_id,
            username=args.username,
            password=password or None,
        )
    except (SealError, RegistryError, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.CONFIG_ERROR
    return _run(listener, done, args)


def _password(path: str | None) -> str | bool | None:
    """The MQTT password from ``--password-file`` (None without one, False when unreadable)."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        print(f"error: cannot read --password-file: {exc.strerror}", file=sys.stderr)
        return False


def _run(listener: Any, done: threading.Event, args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    listener.start()
    try:
        if not listener.wait_ready(args.connect_timeout):
            print(f"error: not subscribed to {args.broker} within {args.connect_timeout:g} s", file=sys.stderr)
            return Exit.BROKER_ERROR
        deadline = time.monotonic() + args.timeout if args.timeout else None
        while not done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            done.wait(0.2)
        return Exit.OK
    except KeyboardInterrupt:
        return Exit.OK
    finally:
        listener.stop()
        signal.signal(signal.SIGTERM, previous)


def _summary(event: Any) -> str:
    """A human line without personal data."""
    h = event.header
    extra = ""
    if event.kind == "identity":
        private = event.private or {}
        verdict = private.get("verification") or {}
        extra = f" source={private.get('source')} verdict={verdict.get('result', verdict.get('status', '?'))}"
    elif event.kind == "read_failed":
        extra = f" reason={h.get('reason')}"
    elif event.kind == "status":
        extra = f" state={h.get('state')}"
    where = f"{h['site']}/{h['counter_id']}"
    head = f"{h['created_at']} {event.kind} device={h['device_id']} counter={where}"
    return f"{head} seq={h['seq']} id={h['event_id']}{extra}"
