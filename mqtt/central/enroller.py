"""The central enrolment service: pairing tokens, CSR checks, certificates, registry, revocation.

One ``Enroller`` serves both ways in: online (enroll.py's ``EnrolService`` calls ``enroll`` with
the token from the box's request) and offline (``idstation central enroll --csr ... --bundle-out``).

Pairing tokens are one-time: ``expect(pairing_code)`` stores only the token's SHA-256 with the
device id, TLS-key fingerprint, site and counter it was shown with; ``enroll`` refuses an unknown
token, a used one, or a CSR whose device or keys differ from what the pairing code announced. All
state changes happen under an exclusive lock on ``CA_DIR/.lock`` and are written atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric import ed25519
from idstation.hal.storage import write_atomic
from idstation.mqtt.central.fleet_ca import FleetCA
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.enrolment.bundle import Bundle, sign_bundle
from idstation.mqtt.enrolment.csr import CsrInfo, verify_csr
from idstation.mqtt.enrolment.errors import CaError, CsrError, EnrollError, TokenError
from idstation.mqtt.enrolment.pairing import NAME_RULE, PairingCode, token_hash, valid_name

log = structlog.get_logger(__name__)

PAIRINGS = "pairings.json"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class EnrolPolicy:
    """What every bundle of this fleet carries besides the certificate.

    ``receipt_keys_dir``: the central directory whose ``receipt_keys.pem`` (the receipt public keys
    boxes trust) goes into each bundle; read at every issue, so a rotation reaches the next renewal
    without restarting the enrolment service. None: bundles carry no receipt keys.
    """

    broker_url: str
    central_public_key_pem: str
    receipt_keys_dir: Path | None = None

    def receipt_keys_pem(self) -> str:
        if self.receipt_keys_dir is None:
            return ""
        from idstation.mqtt.central.receipt_keys import handed_out_pem

        return handed_out_pem(self.receipt_keys_dir)


class Enroller:
    def __init__(
        self,
        ca: FleetCA,
        registry: Registry,
        policy: EnrolPolicy,
        on_registry_change: Callable[[Registry], None] | None = None,
    ) -> None:
        self.ca = ca
        self.registry = registry
        self.policy = policy
        # called after each enrolment, renewal and revocation (e.g. broker_config.write_acls)
        self.on_registry_change = on_registry_change

    def expect(self, code: PairingCode) -> None:
        """Register a pairing code read from a box's screen (the token becomes usable once)."""
        with self._locked():
            pairings = self._pairings()
            key = token_hash(code.token)
            if key in pairings and pairings[key].get("used_at"):
                raise TokenError("pairing token already used")
            pairings[key] = {
                "device_id": code.device_id,
                "site": code.site,
                "counter": code.counter,
                "tls_fp": code.tls_fp,
                "created_at": _now(),
                "used_at": None,
            }
            self._save(pairings)
        log.info("pairing_expected", device_id=code.device_id, site=code.site, counter=code.counter)

    def enroll(
        self,
        csr_pem: bytes,
        *,
        token: str | None = None,
        site: str | None = None,
        counter: str | None = None,
        device_id: str | None = None,
    ) -> Bundle:
        """Check a CSR (and token), issue its certificate, record the device; returns the signed bundle.

        With a token, site and counter come from the pairing (given ones must agree). Without one
        (offline, the operator vouches for the CSR), ``site`` and ``counter`` are required.
        ``device_id`` is the id the request arrived under (the MQTT topic): the CSR must match it.
        """
        info = verify_csr(csr_pem)
        if device_id is not None and device_id != info.device_id:
            raise CsrError("CSR is for another device")
        with self._locked():
            if token is not None:
                site, counter = self._redeem(info, token, site, counter)
            elif site is None or counter is None:
                raise TokenError("a pairing token, or the site and counter, are required")
            for what, value in (("site", site), ("counter", counter)):
                if not valid_name(value):
                    raise EnrollError(f"{what} must be {NAME_RULE}")
            if self.registry.is_revoked(info.device_id):
                raise EnrollError("device is revoked")
            bundle = self._issue(info, site, counter)
        log.info("device_enrolled", device_id=info.device_id, site=site, counter=counter, key_id=info.key_id)
        return bundle

    def renew(self, csr_pem: bytes, *, device_id: str | None = None) -> Bundle:
        """A new certificate for an enrolled, non-revoked device whose signing key is unchanged."""
        info = verify_csr(csr_pem)
        if device_id is not None and device_id != info.device_id:
            raise CsrError("CSR is for another device")
        with self._locked():
            record = self.registry.lookup(info.device_id)
            if record is None:
                raise EnrollError("device is not enrolled or is revoked")
            if record.key_id != info.key_id:
                raise CsrError("renewal CSR's signing key differs from the enrolled key")
            bundle = self._issue(info, record.site, record.counter)
        log.info("device_renewed", device_id=info.device_id)
        return bundle

    def revoke(self, device_id: str, reason: str = "") -> int:
        """Revoke a device in the registry (events rejected) and its certificates (CRL)."""
        with self._locked():
            self.registry.revoke(device_id, reason=reason)
            count = self.ca.revoke_device(device_id)
            self._changed()
        log.info("device_revoked", device_id=device_id, certificates=count)
        return count

    def _redeem(self, info: CsrInfo, token: str, site: str | None, counter: str | None) -> tuple[str, str]:
        pairings = self._pairings()
        record = pairings.get(token_hash(token))
        if record is None:
            raise TokenError("unknown pairing token")
        if record.get("used_at"):
            raise TokenError("pairing token already used")
        if record["device_id"] != info.device_id:
            raise CsrError("CSR is for another device than the pairing code")
        if not info.tls_fingerprint.startswith(record["tls_fp"]):
            raise CsrError("CSR key differs from the key in the pairing code")
        if (site is not None and site != record["site"]) or (counter is not None and counter != record["counter"]):
            raise TokenError("pairing token is bound to another site or counter")
        record["used_at"] = _now()
        self._save(pairings)
        return str(record["site"]), str(record["counter"])

    def _issue(self, info: CsrInfo, site: str, counter: str) -> Bundle:
        issued = self.ca.issue_device(info, site, counter)
        public = ed25519.Ed25519PublicKey.from_public_bytes(info.signing_public_raw)
        self.registry.add_device(
            info.device_id, site, counter, public, certificate_pem=issued.pem.decode("ascii"), key_id=info.key_id
        )
        self._changed()
        bundle = Bundle(
            device_id=info.device_id,
            site=site,
            counter=counter,
            broker_url=self.policy.broker_url,
            certificate_pem=issued.pem.decode("ascii"),
            fleet_ca_pem=self.ca.cert_pem.decode("ascii"),
            central_public_key_pem=self.policy.central_public_key_pem,
            issued_at=_now(),
            receipt_keys_pem=self.policy.receipt_keys_pem(),
        )
        return sign_bundle(bundle, self.ca.sign_blob)

    def _changed(self) -> None:
        if self.on_registry_change is not None:
            self.on_registry_change(self.registry)

    def _pairings(self) -> dict[str, dict[str, Any]]:
        path = self.ca.directory / PAIRINGS
        if not path.exists():
            return {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            raise CaError(f"{PAIRINGS} is not valid JSON: restore it from a backup") from None
        return doc if isinstance(doc, dict) else {}

    def _save(self, pairings: dict[str, dict[str, Any]]) -> None:
        data = (json.dumps(pairings, indent=2, sort_keys=True) + "\n").encode("utf-8")
        write_atomic(self.ca.directory / PAIRINGS, data, mode=0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.ca.directory / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
