"""Certificate renewal: a new TLS key and certificate before expiry, switched to only once it works.

Online: the box stages a new P-256 key in ``STATE/renew/`` (0600), sends a renewal CSR (signed by
the new key, carrying the unchanged Ed25519 key's proof) over its current mTLS connection, gets a
bundle back, proves the new certificate by connecting to the broker with it, and only then
installs it as the next identity generation. Until that switch the old key and certificate stay
in use; a failure leaves them live and the staged key for the next attempt.

Offline: ``stage_renewal`` writes the CSR for the technician; ``apply_any`` recognises a bundle
whose certificate is for the staged key and installs it with that key.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from idstation.mqtt.enrolment.csr import build_csr
from idstation.mqtt.enrolment.session import BrokerAccess, MqttSession
from idstation.provisioning import keys
from idstation.provisioning.bundle import Bundle, apply_bundle, parse_bundle, verify_bundle
from idstation.provisioning.errors import BrokerError, EnrollError
from idstation.provisioning.files import make_private_dir, service_owner, write_atomic
from idstation.provisioning.identity import DeviceIdentity, load_device, load_identity

log = structlog.get_logger(__name__)

RENEW_DIR = "renew"
DEFAULT_DAYS_BEFORE = 30
Probe = Callable[[BrokerAccess], None]


@dataclass(frozen=True, slots=True)
class RenewResult:
    renewed: bool
    reason: str  # "renewed", "not_due"
    not_after: datetime
    device_id: str


class _StagedStore(keys.FileKeyStore):
    """The live signing key with the staged TLS key."""

    def __init__(self, identity_dir: Path, staged_tls: Path) -> None:
        super().__init__(identity_dir)
        self._staged = staged_tls

    def tls_private_key(self) -> ec.EllipticCurvePrivateKey:
        return keys.FileKeyStore(self._staged.parent, tls_key_file=self._staged.name).tls_private_key()

    def tls_key_path(self) -> Path:
        return self._staged


def renew_dir(state_dir: Path | str) -> Path:
    return Path(state_dir) / RENEW_DIR


def stage_renewal(state_dir: Path | str) -> bytes:
    """Stage a new TLS key (kept across attempts) and return a renewal CSR for it."""
    device = load_device(state_dir)
    staging = renew_dir(state_dir)
    make_private_dir(staging, mode=0o700, owner=service_owner())
    staged = staging / keys.TLS_KEY_FILE
    if not staged.exists():
        write_atomic(staged, keys.generate_tls_pem(), mode=0o600, owner=service_owner())
    csr = build_csr(_StagedStore(device.identity_dir, staged))
    write_atomic(staging / "device.csr", csr, mode=0o640, owner=service_owner())
    return csr


def renewal_due(identity: DeviceIdentity, days_before: int, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return identity.cert_not_after - now <= timedelta(days=days_before)


def probe_certificate(access: BrokerAccess) -> None:
    """Connect to the broker with a certificate (TLS handshake + CONNACK); BrokerError otherwise."""
    with MqttSession(access, timeout=10.0):
        pass


def renew_online(
    state_dir: Path | str,
    *,
    access: BrokerAccess | None = None,
    timeout: float = 30.0,
    days_before: int = DEFAULT_DAYS_BEFORE,
    force: bool = False,
    probe: Probe = probe_certificate,
) -> RenewResult:
    """Renew over MQTT when due (or ``force``); the switch happens only after ``probe`` succeeds."""
    from idstation.provisioning.enroll import exchange

    identity = load_identity(state_dir)
    if not force and not renewal_due(identity, days_before):
        return RenewResult(False, "not_due", identity.cert_not_after, identity.device_id)
    csr = stage_renewal(state_dir)
    access = access or identity.broker_access(f"{identity.device_id}-renew")
    request = {"kind": "renew", "csr_pem": csr.decode("ascii")}
    bundle = exchange(access, identity.device_id, request, timeout=timeout)
    return finish_renewal(state_dir, bundle, probe=probe)


def finish_renewal(state_dir: Path | str, data: bytes, *, probe: Probe | None) -> RenewResult:
    """Install a renewal bundle for the staged key, after ``probe`` (if any) proved it works."""
    staged = renew_dir(state_dir) / keys.TLS_KEY_FILE
    if not staged.exists():
        raise EnrollError("no renewal is staged: run `idstation provision renew` first")
    staged_pem = staged.read_bytes()
    bundle = parse_bundle(data)
    device = load_device(state_dir)
    verify_bundle(bundle, device, tls_public=_public_of(staged_pem))
    if probe is not None:
        _probe_new(state_dir, bundle, staged, probe)
    identity = apply_bundle(state_dir, data, new_tls_key_pem=staged_pem)
    shutil.rmtree(renew_dir(state_dir), ignore_errors=True)
    log.info("certificate_renewed", device_id=identity.device_id, not_after=identity.cert_not_after.isoformat())
    return RenewResult(True, "renewed", identity.cert_not_after, identity.device_id)


def apply_any(state_dir: Path | str, data: bytes, *, fleet_ca_fingerprint: str | None = None) -> DeviceIdentity:
    """``provision apply``: a renewal bundle for the staged key, or an enrolment bundle."""
    staged = renew_dir(state_dir) / keys.TLS_KEY_FILE
    if staged.exists():
        bundle = parse_bundle(data)
        cert_key = bundle.certificate().public_key()
        if isinstance(cert_key, ec.EllipticCurvePublicKey) and keys.spki_fingerprint(cert_key) == keys.spki_fingerprint(
            _public_of(staged.read_bytes())
        ):
            finish_renewal(state_dir, data, probe=None)
            return load_identity(state_dir)
    return apply_bundle(state_dir, data, fleet_ca_fingerprint=fleet_ca_fingerprint)


def _probe_new(state_dir: Path | str, bundle: Bundle, staged_key: Path, probe: Probe) -> None:
    staging = renew_dir(state_dir)
    cert_path, ca_path = staging / "device.crt", staging / "fleet_ca.crt"
    write_atomic(cert_path, bundle.certificate_pem.encode("ascii"), mode=0o640)
    write_atomic(ca_path, bundle.fleet_ca_pem.encode("ascii"), mode=0o640)
    access = BrokerAccess(
        bundle.broker_url,
        ca_file=str(ca_path),
        cert_file=str(cert_path),
        key_file=str(staged_key),
        client_id=f"{bundle.device_id}-renew-probe",
    )
    try:
        probe(access)
    except BrokerError as exc:
        raise EnrollError(f"the new certificate did not work ({exc}); the old one stays in use") from None


def _public_of(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise EnrollError("staged renewal key is not an EC key")
    return key.public_key()
