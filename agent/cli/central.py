"""``idstation central listen | init-ca | enroll | revoke``: the central side's commands.

Thin: each handler parses, calls the central library (``idstation.mqtt.central``: listener,
``ca_setup``, enroller) and prints. See docs/cli/central.md and docs/cli/provision.md. New central
commands go here as ``groups["central"].add_parser(...)`` in ``register`` plus a handler.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

from idstation.agent.cli import central_scale
from idstation.agent.cli.exitcodes import Exit, UsageError

# batching (docs/cli/central.md, "The store"; bench/intake_batch.py and bench/store_record.py measure it)
DEFAULT_MAX_BATCH = 400  # the listener's (mqtt/central/intake.py), for the help text
RECEIPT_MAX_INTERVAL = 2.0  # the receipts' MAX_INTERVAL (mqtt/central/receipts.py), for the help text
DEFAULT_MAX_WAIT = 0.05
MAX_BATCH_LIMIT = 10_000


def register(sub: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:  # type: ignore[type-arg]
    """Add the central group's commands."""
    p = groups["central"].add_parser(
        "listen",
        help="receive, verify, decrypt and de-duplicate device events",
        description="Subscribe to idstation events, verify each against the device registry, decrypt it and "
        "print one line per accepted event on stdout (rejections and logs go to stderr).",
    )
    p.add_argument("--broker", metavar="URL", help="mqtt://host:port or mqtts://host:port (or give --amqp)")
    p.add_argument("--registry", required=True, metavar="DIR", help="device registry directory (empty: accept nothing)")
    p.add_argument("--key", required=True, metavar="FILE", help="central X25519 private key (PKCS#8 PEM)")
    _receipt_arguments(p)
    p.add_argument("--group", default="idstation", metavar="NAME", help="shared-subscription group (default idstation)")
    p.add_argument(
        "--no-shared", action="store_true", help="plain subscription even over MQTT 5 (one listener per broker)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per accepted event")
    p.add_argument("--full", action="store_true", help="with --json: include face, raw data groups and EF.SOD")
    _store_arguments(p)
    _batch_arguments(p)
    _connection_arguments(p)
    p.add_argument("--count", type=int, metavar="N", help="exit after N accepted events")
    p.add_argument("--timeout", type=float, metavar="S", help="exit after S seconds")
    p.add_argument(
        "--connect-timeout", type=float, default=30.0, metavar="S", help="exit 9 if not subscribed within S seconds"
    )
    central_scale.add_arguments(p)  # --amqp, --prefetch, --metrics (H8)
    p.set_defaults(func=_listen)


def _receipt_arguments(p: argparse.ArgumentParser) -> None:
    """How ``central listen`` signs receipts and how long the broker keeps its session."""
    p.add_argument(
        "--receipt-key",
        metavar="FILE",
        help="Ed25519 key that signs receipts (PKCS#8 PEM; default receipt_key.pem beside --key; "
        "when that is absent receipts are off, with a warning)",
    )
    p.add_argument(
        "--receipt-interval",
        type=float,
        default=0.2,
        metavar="S",
        help="at most one receipt per device stream per S seconds (default 0.2)",
    )
    p.add_argument(
        "--receipt-max-interval",
        type=float,
        default=RECEIPT_MAX_INTERVAL,
        metavar="S",
        help="under load (many streams owing a receipt at once) the interval grows, up to S seconds "
        f"(default {RECEIPT_MAX_INTERVAL:g}; 0-60): receipts stay a small share of the centre's work",
    )
    p.add_argument(
        "--session-expiry",
        type=int,
        default=None,
        metavar="S",
        help="MQTT 5 session expiry in seconds (default: the broker's maximum)",
    )


def _store_arguments(p: argparse.ArgumentParser) -> None:
    """Where ``central listen`` records accepted events, and for how long."""
    p.add_argument(
        "--store",
        metavar="URL",
        help="central store: sqlite:///path or postgresql://user@host:port/db (migrated at start)",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="the embedded store's SQLite file (= --store sqlite:///FILE; default: per group under "
        "/var/lib/idstation-central or $IDSTATION_CENTRAL_STATE_DIR)",
    )
    p.add_argument(
        "--retention-days",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="purge accepted events older than DAYS every hour (default 30; 0 = never)",
    )


def _batch_arguments(p: argparse.ArgumentParser) -> None:
    """How many deliveries ``central listen`` records per store transaction, and how long it waits to fill one."""
    p.add_argument(
        "--max-batch",
        type=int,
        default=None,
        metavar="N",
        help=f"at most N messages per store transaction (default {DEFAULT_MAX_BATCH}, with --amqp at most half of "
        f"--prefetch, so checking the next batch overlaps this one's commit; 1-{MAX_BATCH_LIMIT})",
    )
    p.add_argument(
        "--max-wait",
        type=float,
        default=DEFAULT_MAX_WAIT,
        metavar="S",
        help=f"commit a batch at most S seconds after its first message (default {DEFAULT_MAX_WAIT:g}; 0-10)",
    )


def _connection_arguments(p: argparse.ArgumentParser) -> None:
    """How ``central listen`` connects to the broker (protocol, client id, TLS, credentials)."""
    p.add_argument("--protocol", choices=("auto", "5", "3.1.1"), default="auto", help="MQTT version (default auto)")
    p.add_argument("--client-id", metavar="ID", help="MQTT client id (stable id = persistent session)")
    p.add_argument("--ca", metavar="FILE", help="mqtts: CA certificate that signed the broker")
    p.add_argument("--cert", metavar="FILE", help="mqtts: client certificate (mTLS)")
    p.add_argument("--client-key", metavar="FILE", help="mqtts: client certificate's private key")
    p.add_argument("--insecure", action="store_true", help="mqtts: do not check the broker's host name")
    p.add_argument("--username", metavar="NAME", help="MQTT user name")
    p.add_argument("--password-file", metavar="FILE", help="file holding the MQTT password")


def _listen(args: argparse.Namespace) -> int:
    import structlog
    from idstation.agent.errors import ConfigError
    from idstation.mqtt.central.listener import AcceptedEvent, event_to_json_line
    from idstation.mqtt.central.registry import Registry
    from idstation.mqtt.connection import TlsOptions, parse_broker_url
    from idstation.mqtt.errors import PublishError
    from idstation.mqtt.topics import valid_name

    log = structlog.get_logger("idstation.central")
    scale, metrics = central_scale.listener_options(args)
    # Failures raise typed errors: the catch-all gives the exit code and, with --json, the error object.
    try:
        url = parse_broker_url("mqtt://amqp.invalid" if scale.get("amqp") else args.broker)
    except PublishError as exc:
        raise UsageError(str(exc)) from exc
    if not valid_name(args.group):
        raise UsageError("--group is 1-128 of A-Z a-z 0-9 . _ -")
    _check_listen_arguments(args)
    password = _password(args.password_file)
    tls = TlsOptions(args.ca, args.cert, args.client_key, args.insecure) if url.tls else None
    accepted = 0
    done = threading.Event()

    lines: list[str] = []  # the batch's lines (the commit thread's): one write per batch

    def on_event(event: AcceptedEvent) -> None:
        nonlocal accepted
        lines.append(event_to_json_line(event, full=args.full) if args.json else _summary(event))
        accepted += 1
        if args.count and accepted >= args.count:
            done.set()

    def on_delivered() -> None:
        """After each batch's events: its lines in one write (stdout's 8 KB buffer wrote ~8 times
        a batch, each a system call that hands the GIL to another thread), then a flush."""
        if lines:
            text = "\n".join(lines) + "\n"
            lines.clear()
            sys.stdout.write(text)
        sys.stdout.flush()

    try:
        registry = Registry(args.registry)
        if not registry.devices():
            log.warning("central_registry_empty", registry=args.registry)
        registry.watch()  # revocations and enrolments reach this process within a second, off its message thread
        on_accepted = central_scale.observed(on_event, metrics)
        listener = _listener(args, registry, (on_accepted, on_delivered), scale=scale, tls=tls, password=password)
    except PublishError as exc:  # SealError / RegistryError propagate: exit 8 through the table
        raise ConfigError(str(exc)) from exc
    server = central_scale.start_metrics(args, listener, metrics)
    try:
        return _run(listener, done, args)
    finally:
        if server is not None:
            server.stop()


def _check_listen_arguments(args: argparse.Namespace) -> None:
    if args.store and args.state:
        raise UsageError("give --store URL or --state FILE, not both")
    if args.retention_days < 0:
        raise UsageError("--retention-days is >= 0")
    if args.session_expiry is not None and not 0 <= args.session_expiry <= 0xFFFFFFFF:
        raise UsageError("--session-expiry is 0-4294967295 seconds")
    if not 0 <= args.receipt_interval <= 60:
        raise UsageError("--receipt-interval is 0-60 seconds")
    if not 0 <= args.receipt_max_interval <= 60:
        raise UsageError("--receipt-max-interval is 0-60 seconds")
    if args.max_batch is not None and not 1 <= args.max_batch <= MAX_BATCH_LIMIT:
        raise UsageError(f"--max-batch is 1-{MAX_BATCH_LIMIT}")
    if not 0 <= args.max_wait <= 10:
        raise UsageError("--max-wait is 0-10 seconds")


def _listener(
    args: argparse.Namespace, registry: Any, callbacks: Any, *, scale: dict[str, Any], tls: Any, password: Any
) -> Any:
    """The ``CentralListener`` the arguments describe; ``callbacks``: ``(on_event, on_delivered)``."""
    on_event, on_delivered = callbacks
    from idstation.mqtt.central.listener import CentralListener

    return CentralListener(
        args.broker,
        registry,
        args.key,
        receipt_signer=_receipt_signer(args),
        receipt_interval=args.receipt_interval,
        receipt_max_interval=args.receipt_max_interval,
        **({"session_expiry": args.session_expiry} if args.session_expiry is not None else {}),
        on_event=on_event,
        on_delivered=on_delivered,
        **scale,
        group=args.group,
        shared=not args.no_shared,
        state_path=args.state,
        store=args.store,
        retention_days=args.retention_days or None,
        max_batch=args.max_batch,
        max_wait=args.max_wait,
        tls=tls,
        protocol=args.protocol,
        client_id=args.client_id,
        username=args.username,
        password=password or None,
    )


def _receipt_signer(args: argparse.Namespace) -> Any:
    """``--receipt-key``, else receipt_key.pem beside ``--key``; absent: receipts off, said loudly."""
    from idstation.mqtt.central.receipts import receipt_signer_for

    signer = receipt_signer_for(args.key, args.receipt_key)
    if signer is None:
        print(
            "WARNING: no receipt key beside --key: receipts are OFF, boxes keep and resend every event", file=sys.stderr
        )
    return signer


def _password(path: str | None) -> str | None:
    """The MQTT password from ``--password-file`` (None without one; ConfigError, exit 8, when unreadable)."""
    from idstation.agent.errors import ConfigError

    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read --password-file: {exc.strerror}") from exc


def _run(listener: Any, done: threading.Event, args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    listener.start()
    try:
        if not listener.wait_ready(args.connect_timeout):
            from idstation.mqtt.errors import PublishError

            where = args.broker or "the AMQP cluster"
            raise PublishError(f"not subscribed to {where} within {args.connect_timeout:g} s")  # exit 9
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
