"""Enrol a simulated box in-process: ``provision init`` + the fleet CA's signature + ``provision apply``.

The demo, the tests and the benches use it to get a box identity without a pairing round trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from idstation.provisioning.identity import CSR_FILE, DeviceIdentity, init_device

__all__ = ["provision_for_tests"]


def provision_for_tests(  # noqa: PLR0917 (the contract with the demo is positional)
    state_dir: Path | str,
    site: str,
    counter: str,
    fleet_ca: Any,
    central_public_key: Any,
    broker_url: str,
    *,
    registry: Any = None,
) -> DeviceIdentity:
    """Init + fleet-CA signing + apply, in-process (demo and tests).

    ``fleet_ca``: a ``FleetCA`` or its directory (created when empty). ``central_public_key``: an
    X25519 public key or its PEM. ``registry``: a ``Registry``, its directory, or None for
    ``<fleet CA dir>/registry``. Returns the enrolled identity.
    """
    from idstation.mqtt.central.enroller import Enroller, EnrolPolicy
    from idstation.mqtt.central.fleet_ca import CA_KEY, FleetCA
    from idstation.mqtt.central.registry import Registry
    from idstation.provisioning.bundle import apply_bundle

    if not isinstance(fleet_ca, FleetCA):
        ca_dir = Path(fleet_ca)
        fleet_ca = FleetCA(ca_dir) if (ca_dir / CA_KEY).exists() else FleetCA.create(ca_dir)
    if isinstance(central_public_key, x25519.X25519PublicKey):
        central_pem = central_public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
    else:
        central_pem = (
            central_public_key.decode("ascii") if isinstance(central_public_key, bytes) else central_public_key
        )
    if not isinstance(registry, Registry):
        registry = Registry(registry if registry is not None else fleet_ca.directory / "registry", create=True)
    result = init_device(state_dir, site=site, counter=counter, force=True, fleet_ca_fingerprint=fleet_ca.fingerprint)
    enroller = Enroller(fleet_ca, registry, EnrolPolicy(broker_url=broker_url, central_public_key_pem=central_pem))
    enroller.expect(result.pairing)
    csr = (result.device.identity_dir / CSR_FILE).read_bytes()
    bundle = enroller.enroll(csr, token=result.pairing.token)
    return apply_bundle(state_dir, bundle.to_bytes())


provision_for_tests.__test__ = False  # type: ignore[attr-defined]
