"""``idstation central init-ca | enroll | receipt-key | revoke``: the fleet CA side of the centre.

Thin: each handler parses, calls the central library (``mqtt.central.ca_setup``, the enroller,
``enrol_service``, ``receipt_keys``) and prints. See docs/cli/provision.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idstation.agent.cli.common import DEFAULT_CENTRAL_DIR, ERROR_STYLE, central_dir, print_json, read_secret
from idstation.agent.cli.exitcodes import Exit, UsageError
from idstation.agent.cli.parser import SubParsers

if TYPE_CHECKING:
    from idstation.mqtt.central.enroller import Enroller


def _central_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", default=None, help=f"central state directory (default $IDSTATION_CENTRAL_DIR or {DEFAULT_CENTRAL_DIR})"
    )
    p.add_argument("--registry", default=None, help="device registry directory (default DIR/registry)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(**{ERROR_STYLE: "class"})


def register(sub: SubParsers, groups: dict[str, SubParsers]) -> None:
    """Add ``central init-ca | enroll | receipt-key | revoke``."""
    central = groups["central"]
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
    p.add_argument("--site", default=None, help="offline, no pairing code: the site (1-64 of A-Z a-z 0-9 . _ -)")
    p.add_argument("--counter", default=None, help="offline, no pairing code: the counter (1-64 of A-Z a-z 0-9 . _ -)")
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


def _registry_dir(args: argparse.Namespace) -> Path | None:
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


def _enroller(args: argparse.Namespace) -> Enroller:
    from idstation.mqtt.central.ca_setup import open_enroller

    return open_enroller(
        central_dir(args),
        registry_dir=_registry_dir(args),
        broker_url=getattr(args, "broker_url", None),
        central_key=getattr(args, "central_key", None),
    )


def _enroll(args: argparse.Namespace) -> int:
    from idstation.mqtt.enrolment.pairing import PairingCode
    from idstation.provisioning.errors import CaError
    from idstation.provisioning.files import write_atomic

    _check_names(args)
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


def _check_names(args: argparse.Namespace) -> None:
    """``--site`` and ``--counter`` follow the one name rule of enrolment (exit 2, as ``provision init``)."""
    from idstation.mqtt.enrolment.pairing import NAME_RULE, valid_name

    for what in ("site", "counter"):
        value = getattr(args, what)
        if value is not None and not valid_name(value):
            raise UsageError(f"--{what} must be {NAME_RULE}")


def _serve(args: argparse.Namespace, enroller: Enroller) -> int:
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
    from idstation.mqtt.enrolment.pairing import NAME_RULE, valid_name

    device_id = args.device_id or args.device_id_opt
    if not device_id:
        raise UsageError("name the device to revoke (ids-...)")
    if not valid_name(device_id):
        raise UsageError(f"the device id must be {NAME_RULE}")
    enroller = _enroller(args)
    count = enroller.revoke(device_id, reason=args.reason)
    doc = {"ok": True, "device_id": device_id, "revoked": True, "certificates": count}
    if args.json:
        print_json(doc)
    else:
        print(f"revoked {device_id}: {count} certificate(s) added to {enroller.ca.directory / 'crl.pem'}")
    return Exit.OK
