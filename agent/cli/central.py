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
from idstation.agent.cli.common import DEFAULT_CENTRAL_DIR, ERROR_STYLE, central_dir, print_json, read_secret
from idstation.agent.cli.exitcodes import Exit, UsageError


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
        "--session-expiry",
        type=int,
        default=None,
        metavar="S",
        help="MQTT 5 session expiry in seconds (default: the broker's maximum)",
    )
    p.add_argument("--group", default="idstation", metavar="NAME", help="shared-subscription group (default idstation)")
    p.add_argument(
        "--no-shared", action="store_true", help="plain subscription even over MQTT 5 (one listener per broker)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per accepted event")
    p.add_argument("--full", action="store_true", help="with --json: include face, raw data groups and EF.SOD")
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
    central_scale.add_arguments(p)  # --amqp, --prefetch, --metrics (H8)
    p.set_defaults(func=_listen)
    _register_ca(groups["central"])


def _listen(args: argparse.Namespace) -> int:
    import structlog
    from idstation.mqtt.central.listener import AcceptedEvent, CentralListener, event_to_json_line
    from idstation.mqtt.central.registry import Registry, valid_name
    from idstation.mqtt.connection import TlsOptions, parse_broker_url
    from idstation.mqtt.errors import PublishError, RegistryError, SealError

    log = structlog.get_logger("idstation.central")
    scale, metrics = central_scale.listener_options(args)
    try:
        url = parse_broker_url("mqtt://amqp.invalid" if scale.get("amqp") else args.broker)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.USAGE
    if not valid_name(args.group):
        print("error: --group is 1-128 of A-Z a-z 0-9 . _ -", file=sys.stderr)
        return Exit.USAGE
    if args.store and args.state:
        raise UsageError("give --store URL or --state FILE, not both")
    if args.retention_days < 0:
        raise UsageError("--retention-days is >= 0")
    if args.session_expiry is not None and not 0 <= args.session_expiry <= 0xFFFFFFFF:
        raise UsageError("--session-expiry is 0-4294967295 seconds")
    if not 0 <= args.receipt_interval <= 60:
        raise UsageError("--receipt-interval is 0-60 seconds")
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
        registry.watch()  # revocations and enrolments reach this process within a second, off its message thread
        receipts = _receipt_signer(args)
        listener = CentralListener(
            args.broker,
            registry,
            args.key,
            receipt_signer=receipts,
            receipt_interval=args.receipt_interval,
            **({"session_expiry": args.session_expiry} if args.session_expiry is not None else {}),
            on_event=central_scale.observed(on_event, metrics),
            **scale,
            group=args.group,
            shared=not args.no_shared,
            state_path=args.state,
            store=args.store,
            retention_days=args.retention_days or None,
            tls=tls,
            protocol=args.protocol,
            client_id=args.client_id,
            username=args.username,
            password=password or None,
        )
    except (SealError, RegistryError, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.CONFIG_ERROR
    server = central_scale.start_metrics(args, listener, metrics)
    try:
        return _run(listener, done, args)
    finally:
        if server is not None:
            server.stop()


def _receipt_signer(args: argparse.Namespace) -> Any:
    """``--receipt-key``, else receipt_key.pem beside ``--key``; absent: receipts off, said loudly."""
    from idstation.mqtt.central.receipts import receipt_signer_for

    signer = receipt_signer_for(args.key, args.receipt_key)
    if signer is None:
        print(
            "WARNING: no receipt key beside --key: receipts are OFF, boxes keep and resend every event", file=sys.stderr
        )
    return signer


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
            where = args.broker or "the AMQP cluster"
            print(f"error: not subscribed to {where} within {args.connect_timeout:g} s", file=sys.stderr)
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


# ---- fleet CA and enrolment ----------------------------------------------------------------------


def _central_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", default=None, help=f"central state directory (default $IDSTATION_CENTRAL_DIR or {DEFAULT_CENTRAL_DIR})"
    )
    p.add_argument("--registry", default=None, help="device registry directory (default DIR/registry)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(**{ERROR_STYLE: "class"})


def _register_ca(central: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = central.add_parser("init-ca", help="create the fleet CA, registry and enrolment settings")
    _central_dir_arg(p)
    p.add_argument("--name", default="idstation fleet CA", help="CA common name")
    p.add_argument("--broker-url", default="", help="mqtts://host:port the boxes publish to (written into bundles)")
    p.add_argument("--central-key", default=None, help="central X25519 key PEM (public or private); default: make one")
    p.add_argument("--server-cert", nargs="+", default=None, metavar="HOST", help="also issue a broker certificate")
    p.set_defaults(func=_init_ca)

    p = central.add_parser("enroll", help="accept a pairing code, sign a CSR into a bundle, or serve online enrolment")
    _central_dir_arg(p)
    p.add_argument("--pairing-code", default=None, help="the text of the box's pairing QR code")
    p.add_argument("--csr", default=None, help="offline: the box's device.csr")
    p.add_argument("--site", default=None, help="offline without a pairing code: the site")
    p.add_argument("--counter", default=None, help="offline without a pairing code: the counter")
    p.add_argument("--renew", action="store_true", help="offline renewal: --csr is a renewal CSR of an enrolled box")
    p.add_argument("--bundle-out", "--out", dest="bundle_out", default=None, help="where to write the bundle (offline)")
    p.add_argument("--broker-url", default=None, help="override the broker URL put into bundles")
    p.add_argument("--central-key", default=None, help="override the central key PEM put into bundles")
    p.add_argument("--serve", action="store_true", help="answer online enrolment requests over MQTT")
    p.add_argument("--broker", default=None, help="--serve: broker URL to connect to")
    p.add_argument("--user", default=None, help="--serve: broker username (ACL: idstation/v1/provision/#)")
    p.add_argument("--password", default=None, help="--serve: broker password (or --password-file)")
    p.add_argument("--password-file", default=None)
    p.add_argument("--ca", default=None, help="--serve: CA file for the broker's TLS certificate")
    p.add_argument("--max-requests", type=int, default=None, help="--serve: stop after this many answers")
    p.add_argument("--duration", type=float, default=None, help="--serve: stop after this many seconds")
    p.set_defaults(func=_enroll)

    p = central.add_parser("receipt-key", help="rotate the receipt signing key: add, activate, retire, list")
    _central_dir_arg(p)
    p.add_argument("action", choices=["add", "activate", "retire", "list"])
    p.add_argument("key_id", nargs="?", default=None, help="retire: the key id (ed25519:...) to stop handing out")
    p.set_defaults(func=_receipt_key)

    p = central.add_parser(
        "revoke", help="revoke a device: its events are rejected, its certificates listed in the CRL"
    )
    p.add_argument("device_id", nargs="?", default=None, help="the device id (ids-...)")
    p.add_argument("--device-id", dest="device_id_opt", default=None, help="the device id (same as the positional)")
    _central_dir_arg(p)
    p.add_argument("--reason", default="", help="free text kept with the revocation")
    p.set_defaults(func=_revoke)


def _registry_dir(args: argparse.Namespace) -> Any:
    from pathlib import Path

    return Path(args.registry) if args.registry else None


def _init_ca(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.ca_setup import init_central

    doc = init_central(
        central_dir(args),
        name=args.name,
        broker_url=args.broker_url,
        central_key=args.central_key,
        server_hosts=args.server_cert,
        registry_dir=_registry_dir(args),
    )
    if args.json:
        print_json(doc)
    else:
        print(f"fleet CA created in {central_dir(args) / 'ca'} (sha256 {doc['fingerprint']})")
        for key_name in ("registry", "central_key", "receipt_key", "broker_cert", "broker_conf"):
            if key_name in doc:
                print(f"{key_name:<12} {doc[key_name]}")
    return Exit.OK


def _enroller(args: argparse.Namespace) -> Any:
    from idstation.mqtt.central.ca_setup import open_enroller

    return open_enroller(
        central_dir(args),
        registry_dir=_registry_dir(args),
        broker_url=getattr(args, "broker_url", None),
        central_key=getattr(args, "central_key", None),
    )


def _enroll(args: argparse.Namespace) -> int:
    from pathlib import Path

    from idstation.mqtt.enrolment.pairing import PairingCode
    from idstation.provisioning.errors import CaError
    from idstation.provisioning.files import write_atomic

    enroller = _enroller(args)
    if args.serve:
        return _serve(args, enroller)
    code = PairingCode.parse(args.pairing_code) if args.pairing_code else None
    if args.csr is None:
        if code is None:
            raise UsageError("give --pairing-code, --csr with --bundle-out, or --serve")
        enroller.expect(code)
        doc = {"ok": True, "expected": code.device_id, "site": code.site, "counter": code.counter}
        doc["fleet_ca_sha256"] = enroller.ca.fingerprint  # what the technician confirms on the box
        print_json(doc) if args.json else print(f"expecting {code.device_id} at {code.site}/{code.counter}")
        return Exit.OK
    if not args.bundle_out:
        raise UsageError("--csr needs --bundle-out FILE")
    if not enroller.policy.broker_url or not enroller.policy.central_public_key_pem:
        raise CaError("no broker URL / central key for bundles: set them with init-ca or --broker-url/--central-key")
    csr = Path(args.csr).read_bytes()
    if args.renew:
        bundle = enroller.renew(csr)
    elif code is not None:
        enroller.expect(code)
        bundle = enroller.enroll(csr, token=code.token, site=args.site, counter=args.counter)
    else:
        bundle = enroller.enroll(csr, site=args.site, counter=args.counter)
    write_atomic(Path(args.bundle_out), bundle.to_bytes())
    doc = {
        "ok": True,
        "device_id": bundle.device_id,
        "site": bundle.site,
        "counter": bundle.counter,
        "bundle": args.bundle_out,
        "certificate_not_after": bundle.certificate().not_valid_after_utc.isoformat(),
    }
    if args.json:
        print_json(doc)
    else:
        print(f"bundle for {bundle.device_id} at {bundle.site}/{bundle.counter} written to {args.bundle_out}")
    return Exit.OK


def _serve(args: argparse.Namespace, enroller: Any) -> int:
    from idstation.mqtt.central.enrol_service import EnrolService
    from idstation.mqtt.enrolment.session import BrokerAccess

    if not args.broker:
        raise UsageError("--serve needs --broker URL")
    password = read_secret(args.password, args.password_file, "IDSTATION_ENROL_PASSWORD")
    service = EnrolService(enroller, BrokerAccess(args.broker, args.user, password, args.ca))
    handled = service.serve(max_requests=args.max_requests, duration=args.duration)
    if args.json:
        print_json({"ok": True, "handled": handled})
    return Exit.OK


def _receipt_key(args: argparse.Namespace) -> int:
    """Rotation: `add` hands a new key out (boxes learn it at renewal), `activate` signs with it, `retire`."""
    from idstation.mqtt.central import receipt_keys

    root = central_dir(args)
    if args.action == "add":
        doc: dict[str, Any] = {"ok": True, "staged": receipt_keys.add(root)}
    elif args.action == "activate":
        doc = {"ok": True, "active": receipt_keys.activate(root)}
    elif args.action == "retire":
        if not args.key_id:
            raise UsageError("name the key id to retire (ed25519:...)")
        receipt_keys.retire(root, args.key_id)
        doc = {"ok": True, "retired": args.key_id}
    else:
        doc = {"ok": True}
    doc["keys"] = [{"key_id": k.key_id, "status": k.status} for k in receipt_keys.listing(root)]
    if args.json:
        print_json(doc)
    else:
        for key in doc["keys"]:
            print(f"{key['key_id']}  {key['status']}")
    return Exit.OK


def _revoke(args: argparse.Namespace) -> int:
    from idstation.mqtt.topics import valid_name

    device_id = args.device_id or args.device_id_opt
    if not device_id or not valid_name(device_id):
        raise UsageError("name the device to revoke (ids-...)")
    enroller = _enroller(args)
    count = enroller.revoke(device_id, reason=args.reason)
    doc = {"ok": True, "device_id": device_id, "revoked": True, "certificates": count}
    if args.json:
        print_json(doc)
    else:
        print(f"revoked {device_id}: {count} certificate(s) added to {enroller.ca.directory / 'crl.pem'}")
    return Exit.OK
