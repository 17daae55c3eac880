"""Handlers of ``idstation central init-ca | enroll | revoke`` (the fleet CA side).

Central state directory (``--dir``, default ``$IDSTATION_CENTRAL_DIR`` or /var/lib/idstation-central)::

    DIR/ca/               fleet CA: ca_key.pem (0600), ca.crt, crl.pem, issued.jsonl, pairings.json
    DIR/registry/         device registry read by `idstation central listen`
    DIR/central_key.pem   central X25519 private key (0600) when init-ca made it; central.pub.pem
    DIR/enroll.json       {"broker_url", "central_public_key_pem"}: what every bundle carries
    DIR/broker/           server.key, server.crt, ca.crt for the broker (init-ca --server-cert)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from idstation.agent.exitcodes import Exit
from idstation.provisioning.cli import _central, _print_json, _read_secret
from idstation.provisioning.errors import CaError, ProvisioningError
from idstation.provisioning.files import make_private_dir, write_atomic

ENROLL_JSON = "enroll.json"


def _pub_pem(key: x25519.X25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _central_public_pem(path: str) -> str:
    data = Path(path).read_bytes()
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            if isinstance(private, x25519.X25519PrivateKey):
                return _pub_pem(private.public_key())
        else:
            public = serialization.load_pem_public_key(data)
            if isinstance(public, x25519.X25519PublicKey):
                return _pub_pem(public)
    except ValueError:
        pass
    raise ProvisioningError(f"{path} is not an X25519 key in PEM")


def init_ca(args: argparse.Namespace) -> int:
    from idstation.mqtt.central.fleet_ca import FleetCA
    from idstation.mqtt.central.registry import Registry

    root = _central(args)
    make_private_dir(root, mode=0o750)
    ca = FleetCA.create(root / "ca", args.name)
    registry_dir = Path(args.registry) if args.registry else root / "registry"
    Registry(registry_dir, create=True)
    doc: dict[str, Any] = {"ok": True, "dir": str(root), "ca_cert": str(root / "ca" / "ca.crt")}
    if args.central_key:
        central_pem = _central_public_pem(args.central_key)
    else:
        key = x25519.X25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(root / "central_key.pem", pem, mode=0o600)
        central_pem = _pub_pem(key.public_key())
        write_atomic(root / "central.pub.pem", central_pem.encode())
        doc["central_key"] = str(root / "central_key.pem")
    settings = {"broker_url": args.broker_url, "central_public_key_pem": central_pem}
    write_atomic(root / ENROLL_JSON, (json.dumps(settings, indent=2) + "\n").encode())
    if args.server_cert:
        key_pem, cert_pem = ca.issue_server(args.server_cert)
        make_private_dir(root / "broker", mode=0o750)
        write_atomic(root / "broker" / "server.key", key_pem, mode=0o600)
        write_atomic(root / "broker" / "server.crt", cert_pem)
        write_atomic(root / "broker" / "ca.crt", ca.cert_pem)
        _write_broker_config(root / "broker", ca.directory / "crl.pem")
        doc["broker_cert"] = str(root / "broker" / "server.crt")
        doc["broker_conf"] = str(root / "broker" / "mosquitto.conf")
    doc.update(registry=str(registry_dir), fingerprint=ca.fingerprint, broker_url=args.broker_url)
    if args.json:
        _print_json(doc)
    else:
        print(f"fleet CA created in {root / 'ca'} (sha256 {ca.fingerprint})")
        for key_name in ("registry", "central_key", "broker_cert", "broker_conf"):
            if key_name in doc:
                print(f"{key_name:<12} {doc[key_name]}")
    return Exit.OK


def _write_broker_config(broker: Path, crl: Path) -> None:
    """mosquitto.conf + ACLs (passwords are the operator's: mosquitto_passwd -c broker/passwords claim)."""
    from idstation.mqtt.central.broker_config import CLAIM_ACL, DEVICE_ACL, mosquitto_conf

    write_atomic(broker / "claim.acl", CLAIM_ACL.encode())
    write_atomic(broker / "device.acl", DEVICE_ACL.encode())
    write_atomic(
        broker / "mosquitto.conf",
        mosquitto_conf(broker.resolve(), crl.resolve(), persistence_dir=Path("/var/lib/mosquitto")).encode(),
    )


def _enroller(args: argparse.Namespace) -> Any:
    from idstation.mqtt.central.enroller import Enroller, EnrolPolicy
    from idstation.mqtt.central.fleet_ca import FleetCA
    from idstation.mqtt.central.registry import Registry

    root = _central(args)
    ca = FleetCA(root / "ca")
    try:
        settings = json.loads((root / ENROLL_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        settings = {}
    except ValueError:
        raise CaError(f"{root / ENROLL_JSON} is not valid JSON") from None
    broker_url = args.broker_url if getattr(args, "broker_url", None) else settings.get("broker_url", "")
    central_pem = settings.get("central_public_key_pem", "")
    if getattr(args, "central_key", None):
        central_pem = _central_public_pem(args.central_key)
    registry = Registry(Path(args.registry) if args.registry else root / "registry", create=True)
    return Enroller(ca, registry, EnrolPolicy(broker_url, central_pem))


def enroll(args: argparse.Namespace) -> int:
    from idstation.provisioning.pairing import PairingCode

    enroller = _enroller(args)
    if args.serve:
        return _serve(args, enroller)
    code = PairingCode.parse(args.pairing_code) if args.pairing_code else None
    if args.csr is None:
        if code is None:
            raise ProvisioningError("give --pairing-code, --csr with --bundle-out, or --serve")
        enroller.expect(code)
        doc = {"ok": True, "expected": code.device_id, "site": code.site, "counter": code.counter}
        _print_json(doc) if args.json else print(f"expecting {code.device_id} at {code.site}/{code.counter}")
        return Exit.OK
    if not args.bundle_out:
        raise ProvisioningError("--csr needs --bundle-out FILE")
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
        _print_json(doc)
    else:
        print(f"bundle for {bundle.device_id} at {bundle.site}/{bundle.counter} written to {args.bundle_out}")
    return Exit.OK


def _serve(args: argparse.Namespace, enroller: Any) -> int:
    from idstation.provisioning.enroll import EnrolService
    from idstation.provisioning.mqttio import BrokerAccess

    if not args.broker:
        raise ProvisioningError("--serve needs --broker URL")
    password = _read_secret(args.password, args.password_file, "IDSTATION_ENROL_PASSWORD")
    service = EnrolService(enroller, BrokerAccess(args.broker, args.user, password, args.ca))
    handled = service.serve(max_requests=args.max_requests, duration=args.duration)
    if args.json:
        _print_json({"ok": True, "handled": handled})
    return Exit.OK


def revoke(args: argparse.Namespace) -> int:
    device_id = args.device_id or args.device_id_opt
    from idstation.mqtt.central.registry import valid_name

    if not device_id or not valid_name(device_id):
        raise ProvisioningError("name the device to revoke (ids-...)")
    enroller = _enroller(args)
    count = enroller.revoke(device_id, reason=args.reason)
    doc = {"ok": True, "device_id": device_id, "revoked": True, "certificates": count}
    if args.json:
        _print_json(doc)
    else:
        print(f"revoked {device_id}: {count} certificate(s) added to {enroller.ca.directory / 'crl.pem'}")
    return Exit.OK
