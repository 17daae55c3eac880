"""The central state directory: ``init_central`` makes it, ``open_enroller`` works over it.

Used by ``idstation central init-ca | enroll | revoke`` (the command line only parses and prints)::

    DIR/ca/               fleet CA: ca_key.pem (0600), ca.crt, crl.pem, issued.jsonl, pairings.json
    DIR/registry/         device registry read by `idstation central listen`
    DIR/central_key.pem   central X25519 private key (0600) when init-ca made it; central.pub.pem
    DIR/enroll.json       {"broker_url", "central_public_key_pem"}: what every bundle carries
    DIR/receipt_key.pem   the receipt signing key (Ed25519, 0600), receipt.pub.pem, receipt_keys.pem (the
                          public set every bundle carries): receipt_keys.py, rotation included
    DIR/broker/           server.key, server.crt, ca.crt, mosquitto.conf, ACLs (init-ca --server-cert)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from idstation.hal.storage import make_private_dir, write_atomic
from idstation.mqtt.enrolment.errors import CaError, ProvisioningError

if TYPE_CHECKING:
    from idstation.mqtt.central.enroller import Enroller

__all__ = ["ENROLL_JSON", "central_public_pem", "init_central", "open_enroller"]

ENROLL_JSON = "enroll.json"


def _pub_pem(key: x25519.X25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def central_public_pem(path: str | Path) -> str:
    """The central X25519 public key (PEM) from a public or private key file."""
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
    raise ProvisioningError(f"{Path(path).name} is not an X25519 key in PEM")


def init_central(
    root: Path,
    *,
    name: str = "idstation fleet CA",
    broker_url: str = "",
    central_key: str | Path | None = None,
    server_hosts: list[str] | None = None,
    registry_dir: Path | None = None,
) -> dict[str, Any]:
    """Create the fleet CA, registry, central key (unless given) and enrolment settings; a report."""
    from idstation.mqtt.central.fleet_ca import FleetCA
    from idstation.mqtt.central.registry import Registry

    make_private_dir(root, mode=0o750)
    ca = FleetCA.create(root / "ca", name)
    registry_dir = registry_dir or root / "registry"
    registry = Registry(registry_dir, create=True)
    doc: dict[str, Any] = {"ok": True, "dir": str(root), "ca_cert": str(root / "ca" / "ca.crt")}
    if central_key:
        central_pem = central_public_pem(central_key)
    else:
        key = x25519.X25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(root / "central_key.pem", pem, mode=0o600)
        central_pem = _pub_pem(key.public_key())
        write_atomic(root / "central.pub.pem", central_pem.encode())
        doc["central_key"] = str(root / "central_key.pem")
    from idstation.mqtt.central import receipt_keys

    doc["receipt_key_id"] = receipt_keys.create(root)
    doc["receipt_key"] = str(root / receipt_keys.RECEIPT_KEY_FILE)
    settings = {"broker_url": broker_url, "central_public_key_pem": central_pem}
    write_atomic(root / ENROLL_JSON, (json.dumps(settings, indent=2) + "\n").encode())
    if server_hosts:
        key_pem, cert_pem = ca.issue_server(server_hosts)
        make_private_dir(root / "broker", mode=0o750)
        write_atomic(root / "broker" / "server.key", key_pem, mode=0o600)
        write_atomic(root / "broker" / "server.crt", cert_pem)
        write_atomic(root / "broker" / "ca.crt", ca.cert_pem)
        _write_broker_config(root / "broker", ca.directory / "crl.pem", registry)
        doc["broker_cert"] = str(root / "broker" / "server.crt")
        doc["broker_conf"] = str(root / "broker" / "mosquitto.conf")
    doc.update(registry=str(registry_dir), fingerprint=ca.fingerprint, broker_url=broker_url)
    return doc


def _write_broker_config(broker: Path, crl: Path, registry: Any) -> None:
    """mosquitto.conf + ACLs (passwords are the operator's: mosquitto_passwd -c broker/passwords claim)."""
    from idstation.mqtt.central.broker_config import mosquitto_conf, write_acls

    write_acls(broker, registry)
    write_atomic(
        broker / "mosquitto.conf",
        mosquitto_conf(broker.resolve(), crl.resolve(), persistence_dir=Path("/var/lib/mosquitto")).encode(),
    )


def open_enroller(
    root: Path,
    *,
    registry_dir: Path | None = None,
    broker_url: str | None = None,
    central_key: str | Path | None = None,
) -> Enroller:
    """An ``Enroller`` over ``root``'s fleet CA and registry; ``broker_url``/``central_key`` override enroll.json."""
    from idstation.mqtt.central.enroller import Enroller, EnrolPolicy
    from idstation.mqtt.central.fleet_ca import FleetCA
    from idstation.mqtt.central.registry import Registry

    ca = FleetCA(root / "ca")
    try:
        settings = json.loads((root / ENROLL_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        settings = {}
    except ValueError:
        raise CaError(f"{ENROLL_JSON} is not valid JSON") from None
    url = broker_url or settings.get("broker_url", "")
    central_pem = central_public_pem(central_key) if central_key else settings.get("central_public_key_pem", "")
    registry = Registry(registry_dir or root / "registry", create=True)
    policy = EnrolPolicy(url, central_pem, receipt_keys_dir=root)
    return Enroller(ca, registry, policy, on_registry_change=acl_refresher(root))


def acl_refresher(root: Path) -> Any:
    """After an enrolment or revocation: rewrite DIR/broker/device.acl from the registry (when init-ca
    made the broker files); the operator (or a path unit) sends mosquitto SIGHUP to apply it."""
    from idstation.mqtt.central.broker_config import write_acls

    broker = root / "broker"

    def refresh(registry: Any) -> None:
        if (broker / "mosquitto.conf").exists():
            write_acls(broker, registry)

    return refresh
