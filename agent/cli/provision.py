"""``idstation provision init | apply | enroll | renew | show`` and ``idstation selftest`` (the box side).

Handlers call the provisioning library (imported lazily) and print; its typed errors reach the
catch-all, which maps them through ``exitcodes.TABLE`` (docs/cli/provision.md). With ``--json`` a
failure prints ``{"ok": false, "error": "<ErrorClass>", "message", "exit_code"}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idstation.agent.cli.common import DEFAULT_STATE_DIR, ERROR_STYLE, print_json, read_secret, state_dir
from idstation.agent.cli.exitcodes import Exit
from idstation.agent.cli.parser import SubParsers
from idstation.hal.errors import IdstationError

if TYPE_CHECKING:
    from idstation.provisioning.identity import DeviceIdentity


def _state_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", default=None, help=f"device state directory (default {DEFAULT_STATE_DIR})")
    p.set_defaults(**{ERROR_STYLE: "class"})


def _fleet_ca_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fleet-ca-fingerprint",
        default=None,
        metavar="SHA256HEX",
        help="the fleet CA's SHA-256 as `central init-ca` shows it: the only CA whose bundles this box accepts",
    )


def register(sub: SubParsers, groups: dict[str, SubParsers]) -> None:
    """Add this family's commands to the parser."""
    prov = groups["provision"]
    p = prov.add_parser("init", help="make the device keys, CSR and a one-time pairing code (QR)")
    p.add_argument("--site", required=True, help="site name: 1-64 of A-Z a-z 0-9 . _ -")
    p.add_argument("--counter", required=True, help="counter name: 1-64 of A-Z a-z 0-9 . _ -")
    _state_dir_arg(p)
    p.add_argument("--force", action="store_true", help="make new keys even if the box is enrolled (re-enrolment)")
    p.add_argument("--no-qr", action="store_true", help="do not draw the pairing QR code")
    _fleet_ca_arg(p)
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    p.set_defaults(func=_init)

    p = prov.add_parser("apply", help="install an enrolment (or renewal) bundle atomically")
    p.add_argument("--bundle", required=True, help="bundle file (from `idstation central enroll --bundle-out`)")
    _state_dir_arg(p)
    _fleet_ca_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_apply)

    p = prov.add_parser("enroll", aliases=["enroll-online"], help="enrol online over MQTT with a claim credential")
    p.add_argument("--broker", required=True, help="mqtts://host:port of the provisioning listener")
    p.add_argument("--claim-user", required=True, help="claim username (broker ACL: provisioning topics only)")
    p.add_argument("--claim-password", default=None, help="claim password (or --claim-password-file, or env)")
    p.add_argument("--claim-password-file", default=None, help="file holding the claim password")
    p.add_argument("--ca", default=None, help="CA file to trust for the broker (default: system trust)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer (default 30)")
    _state_dir_arg(p)
    _fleet_ca_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_enroll_online)

    p = prov.add_parser("renew", help="a new certificate before expiry; the old one stays until the new one works")
    _state_dir_arg(p)
    p.add_argument("--days-before", type=int, default=30, help="renew when fewer days are left (default 30)")
    p.add_argument("--force", action="store_true", help="renew now whatever the expiry")
    p.add_argument("--broker", default=None, help="override the broker URL of binding.json")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--csr-out", default=None, help="offline: stage a new key, write the renewal CSR here and stop")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_renew)

    p = prov.add_parser("show", help="this box's device id, binding and (before enrolment) its pairing code")
    _state_dir_arg(p)
    p.add_argument("--qr", action="store_true", help="draw the pairing QR code again")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)

    _register_selftest(sub)


def _register_selftest(sub: SubParsers) -> None:
    p = sub.add_parser("selftest", help="check reader, camera, broker, clock, disk and outbox: pass/fail table")
    _state_dir_arg(p)
    p.add_argument("--reader", default=None, help="sim | pcsc | pcsc:NAME | none (default: from config, else pcsc)")
    p.add_argument("--camera", default=None, help="sim | replay:PATH | picamera2 | v4l2[:N] | none (default: config)")
    p.add_argument("--broker", default=None, help="override the broker URL of binding.json")
    p.add_argument("--skip", action="append", default=[], help="skip a check (repeatable): identity, broker, ...")
    p.add_argument("--config", default=None, help="TOML config for defaults (default /etc/idstation/idstation.toml)")
    p.add_argument("--json", action="store_true", help='{"ok": bool, "checks": [{"name", "ok", "detail", "status"}]}')
    p.set_defaults(func=_selftest)


# ---- box commands -----------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    from idstation.provisioning.identity import init_device
    from idstation.provisioning.terminal_qr import render_terminal

    result = init_device(
        state_dir(args),
        site=args.site,
        counter=args.counter,
        force=args.force,
        fleet_ca_fingerprint=args.fleet_ca_fingerprint,
    )
    device, code = result.device, result.pairing
    doc = {
        "ok": True,
        "created": result.created,
        "device_id": device.device_id,
        "key_id": device.key_id,
        "site": device.site,
        "counter": device.counter,
        "tls_fingerprint": device.tls_fingerprint,
        "fleet_ca_sha256": device.fleet_ca_sha256 or None,
        "pairing_code": code.text(),
        "csr": str(device.identity_dir.parent.parent / "identity" / "device.csr"),
        "state_dir": str(state_dir(args)),
    }
    if args.json:
        print_json(doc)
        return Exit.OK
    print(f"device id      {device.device_id}")
    print(f"signing key id {device.key_id}")
    print(f"TLS key        sha256:{device.tls_fingerprint}")
    print(f"site/counter   {device.site}/{device.counter}")
    print(f"fleet CA       sha256:{device.fleet_ca_sha256 or '(not confirmed yet: give --fleet-ca-fingerprint)'}")
    print(f"CSR            {doc['csr']}")
    print(f"pairing code   {code.text()}")
    if not args.no_qr:
        print(render_terminal(code.text()))
    print("Scan the code into `idstation central enroll --pairing-code ...`, then enrol online or apply a bundle.")
    return Exit.OK


def _identity_doc(identity: DeviceIdentity) -> dict[str, Any]:
    return {
        "ok": True,
        "device_id": identity.device_id,
        "site": identity.site,
        "counter": identity.counter,
        "key_id": identity.key_id,
        "broker_url": identity.broker_url,
        "certificate_not_after": identity.cert_not_after.isoformat(),
        "generation": identity.identity_dir.name,
    }


def _apply(args: argparse.Namespace) -> int:
    from idstation.provisioning.renew import apply_any

    data = Path(args.bundle).read_bytes()
    identity = apply_any(state_dir(args), data, fleet_ca_fingerprint=args.fleet_ca_fingerprint)
    return _report_identity(args, identity, "applied")


def _report_identity(args: argparse.Namespace, identity: DeviceIdentity, verb: str) -> int:
    doc = _identity_doc(identity)
    if args.json:
        print_json(doc)
    else:
        print(f"{verb}: {identity.device_id} at {identity.site}/{identity.counter}, broker {identity.broker_url},")
        print(f"certificate valid until {doc['certificate_not_after']} (generation {doc['generation']})")
    return Exit.OK


def _enroll_online(args: argparse.Namespace) -> int:
    from idstation.mqtt.enrolment.session import BrokerAccess
    from idstation.provisioning.enroll import enroll_online

    password = read_secret(args.claim_password, args.claim_password_file, "IDSTATION_CLAIM_PASSWORD")
    access = BrokerAccess(args.broker, args.claim_user, password, args.ca)
    identity = enroll_online(
        state_dir(args), access, timeout=args.timeout, fleet_ca_fingerprint=args.fleet_ca_fingerprint
    )
    return _report_identity(args, identity, "enrolled")


def _renew(args: argparse.Namespace) -> int:
    from idstation.provisioning.identity import load_identity
    from idstation.provisioning.renew import renew_online, stage_renewal

    state = state_dir(args)
    if args.csr_out:
        load_identity(state)
        Path(args.csr_out).write_bytes(stage_renewal(state))
        doc = {"ok": True, "staged": True, "csr": args.csr_out}
        print_json(doc) if args.json else print(f"renewal CSR written to {args.csr_out}; apply the bundle when back")
        return Exit.OK
    access = None
    if args.broker:
        from idstation.mqtt.enrolment.session import BrokerAccess

        identity = load_identity(state)
        access = BrokerAccess(
            args.broker,
            None,
            None,
            str(identity.fleet_ca_path),
            str(identity.tls_cert_path),
            str(identity.tls_key_path),
        )
    result = renew_online(state, access=access, timeout=args.timeout, days_before=args.days_before, force=args.force)
    doc = {
        "ok": True,
        "renewed": result.renewed,
        "reason": result.reason,
        "device_id": result.device_id,
        "certificate_not_after": result.not_after.isoformat(),
    }
    if args.json:
        print_json(doc)
    else:
        print(f"{result.reason.replace('_', ' ')}: certificate valid until {doc['certificate_not_after']}")
    return Exit.OK


def _show(args: argparse.Namespace) -> int:
    from idstation.provisioning.errors import NotProvisioned
    from idstation.provisioning.identity import load_device, load_identity, pairing_code
    from idstation.provisioning.terminal_qr import render_terminal

    device = load_device(state_dir(args))
    doc: dict[str, Any] = {"ok": True, "device_id": device.device_id, "key_id": device.key_id, "enrolled": False}
    doc.update(site=device.site, counter=device.counter, tls_fingerprint=device.tls_fingerprint)
    try:
        doc.update(_identity_doc(load_identity(state_dir(args))), enrolled=True)
    except NotProvisioned:
        doc["pairing_code"] = pairing_code(device).text()
    if args.json:
        print_json(doc)
        return Exit.OK
    for key in sorted(doc):
        if key != "ok":
            print(f"{key:<22} {doc[key]}")
    if args.qr and "pairing_code" in doc:
        print(render_terminal(doc["pairing_code"]))
    return Exit.OK


def _selftest(args: argparse.Namespace) -> int:
    from idstation.provisioning.selftest import SelftestPlan, run_selftest
    from idstation.provisioning.selftest_devices import camera_factory, reader_factory

    defaults = _config_defaults(args.config)
    state = Path(args.state_dir) if args.state_dir else defaults.get("state_dir", state_dir(args))
    from idstation.agent.sim.selftest import SelftestSimulator

    simulator = SelftestSimulator()
    camera, expect = camera_factory(args.camera or defaults.get("camera", "picamera2"), simulator)
    plan = SelftestPlan(
        state_dir=Path(state),
        reader=reader_factory(args.reader or defaults.get("reader", "pcsc"), simulator),
        camera=camera,
        camera_expect=expect,
        broker_url=args.broker,
        outbox=defaults.get("outbox"),
        skip=frozenset(args.skip),
    )
    report = run_selftest(plan)
    if args.json:
        print_json(report.to_json())
    else:
        print(report.table())
    return Exit.OK if report.ok else Exit.FAILED


def _config_defaults(path: str | None) -> dict[str, Any]:
    """Reader/camera/state dir from the daemon's configuration, when one is readable."""
    try:
        from idstation.agent.config import DEFAULT_PATH, load_config

        if path is None and not DEFAULT_PATH.exists():
            return {}
        cfg = load_config(path)
    except (ImportError, IdstationError, OSError):
        return {}
    reader = cfg.reader.kind + (f":{cfg.reader.name}" if cfg.reader.kind == "pcsc" and cfg.reader.name else "")
    camera: str = cfg.camera.kind
    if camera == "replay" and cfg.camera.replay_dir:
        camera = f"replay:{cfg.camera.replay_dir}"
    elif camera == "replay":
        camera = "none"
    return {"state_dir": cfg.state_dir, "reader": reader, "camera": camera, "outbox": cfg.outbox_path}
