"""Enrolment bundles: what the central side gives a box, and installing it atomically.

A bundle is one JSON document (a file on a USB stick for offline enrolment; the payload of the
online enrolment response)::

    {"format": "idstation-bundle/1", "device_id", "site", "counter", "broker_url",
     "certificate_pem", "fleet_ca_pem", "central_public_key_pem", "issued_at",
     "receipt_keys_pem" (optional: one or more Ed25519 PUBLIC KEY blocks, the centre's receipt keys),
     "signature": base64(ECDSA-SHA256 by the fleet CA over the canonical JSON of every other key)}

``receipt_keys_pem`` is left out of the canonical JSON when empty, so bundles made before it
existed still verify. A bundle that carries it replaces the box's set (identity/receipt_keys.pem):
that is how a renewal rolls a new receipt key in; one without it keeps the installed set.

The box accepts it only when it names this device, the certificate is for this device's TLS key
and is issued by the bundled fleet CA, the signature verifies with that CA, and, once a fleet CA is
installed, the bundle comes from the same CA. ``apply_bundle`` builds the next identity generation
and switches to it (statedir.py): a power cut leaves the old or the new identity, never a mix.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from idstation.mqtt.enrolment.bundle import (
    FORMAT,
    MAX_BUNDLE,
    Bundle,
    load_cert,
    parse_bundle,
    sign_bundle,
    verify_issued_by,
)
from idstation.provisioning import identity as ident
from idstation.provisioning.errors import BundleError
from idstation.provisioning.keys import SIGNING_KEY_FILE, TLS_KEY_FILE, FileKeyStore, spki_fingerprint
from idstation.provisioning.statedir import Generation, StateDir, StepHook

log = structlog.get_logger(__name__)

# the format (mqtt.enrolment.bundle) is re-exported: the box's side of bundles is this module
__all__ = ["FORMAT", "MAX_BUNDLE", "Bundle", "apply_bundle", "parse_bundle", "sign_bundle", "verify_bundle"]


def verify_bundle(
    bundle: Bundle,
    device: ident.DeviceInfo,
    *,
    tls_public: ec.EllipticCurvePublicKey,
    fleet_ca_fingerprint: str | None = None,
) -> None:
    """Check that ``bundle`` is for this device and this TLS key, from the confirmed fleet CA, and well-named.

    The fleet CA must be the one installed (renewal), else the one whose fingerprint the technician
    confirmed (``provision init --fleet-ca-fingerprint``, or ``fleet_ca_fingerprint`` here); a box
    that has neither accepts no bundle.
    """
    if bundle.device_id != device.device_id:
        raise BundleError("bundle is for another device")
    _check_names(bundle)
    cert, ca = bundle.certificate(), bundle.fleet_ca()
    _check_pinned_ca(ca, device, fleet_ca_fingerprint)
    cns = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    if not cns or cns[0].value != device.device_id:
        raise BundleError("bundle certificate names another device")
    cert_key = cert.public_key()
    if not isinstance(cert_key, ec.EllipticCurvePublicKey) or spki_fingerprint(cert_key) != spki_fingerprint(
        tls_public
    ):
        raise BundleError("bundle certificate is not for this device's TLS key")
    if not verify_issued_by(cert, ca):
        raise BundleError("bundle certificate is not issued by the bundled fleet CA")
    ca_key = ca.public_key()
    if not isinstance(ca_key, ec.EllipticCurvePublicKey):
        raise BundleError("fleet CA key is not an EC key")
    try:
        ca_key.verify(
            base64.b64decode(bundle.signature, validate=True), bundle.signed_part(), ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        raise BundleError("bundle signature does not verify with its fleet CA") from None
    try:
        central = serialization.load_pem_public_key(bundle.central_public_key_pem.encode("ascii"))
    except ValueError:
        raise BundleError("bundle central key is not a PEM public key") from None
    if not isinstance(central, x25519.X25519PublicKey):
        raise BundleError("bundle central key is not an X25519 key")
    if bundle.receipt_keys_pem:
        from idstation.mqtt.errors import SealError
        from idstation.mqtt.receipt import parse_receipt_keys

        try:
            parse_receipt_keys(bundle.receipt_keys_pem)
        except SealError as exc:
            raise BundleError(f"bundle receipt keys: {exc}") from None


def _check_names(bundle: Bundle) -> None:
    """Site and counter by the enrolment name rule, and a broker URL the transport accepts."""
    from idstation.mqtt.connection import parse_broker_url
    from idstation.mqtt.enrolment.pairing import NAME_RULE, valid_name
    from idstation.mqtt.errors import PublishError

    for what, value in (("site", bundle.site), ("counter", bundle.counter)):
        if not valid_name(value):
            raise BundleError(f"bundle {what} must be {NAME_RULE}")
    if not bundle.broker_url.startswith(("mqtt://", "mqtts://")):
        raise BundleError("bundle broker_url must be mqtt:// or mqtts://")
    try:
        parse_broker_url(bundle.broker_url)
    except PublishError:
        raise BundleError("bundle broker_url is not a valid broker address") from None


def _check_pinned_ca(ca: x509.Certificate, device: ident.DeviceInfo, given: str | None) -> None:
    fingerprint = ca.fingerprint(hashes.SHA256()).hex()
    installed = device.identity_dir / ident.FLEET_CA_FILE
    if installed.exists():
        current = load_cert(installed.read_text(encoding="ascii"), "installed fleet CA")
        if current.fingerprint(hashes.SHA256()).hex() != fingerprint:
            raise BundleError("bundle comes from another fleet CA than the one installed")
        return
    pins = {p for p in (device.fleet_ca_sha256, ident.normalise_fingerprint(given) if given else "") if p}
    if not pins:
        raise BundleError(
            "no fleet CA fingerprint confirmed for this box: give --fleet-ca-fingerprint SHA256 "
            "(as `central init-ca` shows it) to `provision init`, `apply` or `enroll`"
        )
    if len(pins) > 1:
        raise BundleError("the fleet CA fingerprint given differs from the one recorded at provision init")
    if fingerprint not in pins:
        raise BundleError(f"bundle comes from a fleet CA (sha256 {fingerprint[:16]}...) other than the confirmed one")


def apply_bundle(
    state_dir: Path | str,
    data: bytes,
    *,
    on_step: StepHook | None = None,
    new_tls_key_pem: bytes | None = None,
    fleet_ca_fingerprint: str | None = None,
) -> ident.DeviceIdentity:
    """Verify a bundle and install it as the next identity generation; returns the new identity.

    ``new_tls_key_pem`` (renewal with a rotated TLS key) goes into the new generation in place of
    the current TLS key; the bundle's certificate must then be for that key.
    """
    bundle = parse_bundle(data)
    device = ident.load_device(state_dir)
    tls_public = _tls_public(device, new_tls_key_pem)
    verify_bundle(bundle, device, tls_public=tls_public, fleet_ca_fingerprint=fleet_ca_fingerprint)
    if new_tls_key_pem is None and _already_applied(device.identity_dir, bundle):
        log.info("bundle_already_applied", device_id=bundle.device_id)
        return ident.load_identity(state_dir)
    state = StateDir(state_dir, on_step=on_step)
    gen = state.begin()
    try:
        _write_generation(gen, device, bundle, tls_public, new_tls_key_pem)
    except BaseException:
        state.abort(gen)
        raise
    state.commit(gen)
    log.info("bundle_applied", device_id=bundle.device_id, site=bundle.site, counter=bundle.counter)
    return ident.load_identity(state_dir)


def _tls_public(device: ident.DeviceInfo, new_tls_key_pem: bytes | None) -> ec.EllipticCurvePublicKey:
    """The TLS public key the bundle's certificate must be for: the renewal key's, else the installed one's."""
    if new_tls_key_pem is None:
        installed: ec.EllipticCurvePublicKey = FileKeyStore(device.identity_dir).tls_private_key().public_key()
        return installed
    tls_key = serialization.load_pem_private_key(new_tls_key_pem, password=None)
    if not isinstance(tls_key, ec.EllipticCurvePrivateKey):
        raise BundleError("renewal TLS key is not an EC key")
    return tls_key.public_key()


def _write_generation(
    gen: Generation,
    device: ident.DeviceInfo,
    bundle: Bundle,
    tls_public: ec.EllipticCurvePublicKey,
    new_tls_key_pem: bytes | None,
) -> None:
    """Fill a new identity generation: keys carried (or the renewal TLS key), the bundle's files, the binding."""
    gen.carry(device.identity_dir, [SIGNING_KEY_FILE, ident.CSR_FILE])
    if new_tls_key_pem is not None:
        gen.write(TLS_KEY_FILE, new_tls_key_pem)
    else:
        gen.carry(device.identity_dir, [TLS_KEY_FILE])
    device_doc = json.loads((device.identity_dir / ident.DEVICE_JSON).read_text(encoding="utf-8"))
    device_doc.update(site=bundle.site, counter=bundle.counter, tls_fingerprint=spki_fingerprint(tls_public))
    device_doc["fleet_ca_sha256"] = bundle.fleet_ca().fingerprint(hashes.SHA256()).hex()
    gen.write(ident.DEVICE_JSON, ident.dump_json(device_doc))
    gen.write(ident.CERT_FILE, bundle.certificate_pem.encode("ascii"))
    gen.write(ident.FLEET_CA_FILE, bundle.fleet_ca_pem.encode("ascii"))
    gen.write(ident.CENTRAL_KEY_FILE, bundle.central_public_key_pem.encode("ascii"))
    if bundle.receipt_keys_pem:
        gen.write(ident.RECEIPT_KEYS_FILE, bundle.receipt_keys_pem.encode("ascii"))
    else:
        gen.carry(device.identity_dir, [ident.RECEIPT_KEYS_FILE])  # keep the installed set, if any
    binding = {
        "device_id": bundle.device_id,
        "site": bundle.site,
        "counter": bundle.counter,
        "broker_url": bundle.broker_url,
        "issued_at": bundle.issued_at,
        "certificate_not_after": bundle.certificate().not_valid_after_utc.isoformat(),
        "fleet_ca_sha256": bundle.fleet_ca().fingerprint(hashes.SHA256()).hex(),
        "generation": gen.number,
    }
    gen.write(ident.BINDING_JSON, ident.dump_json(binding))


def _already_applied(live: Path, bundle: Bundle) -> bool:
    """True when the live generation holds exactly this bundle (re-running apply changes nothing)."""
    try:
        binding = json.loads((live / ident.BINDING_JSON).read_text(encoding="utf-8"))
        cert = (live / ident.CERT_FILE).read_text(encoding="ascii")
    except (OSError, ValueError):
        return False
    same = (binding.get(k) for k in ("site", "counter", "broker_url", "issued_at"))
    wanted = (bundle.site, bundle.counter, bundle.broker_url, bundle.issued_at)
    return tuple(same) == wanted and cert.strip() == bundle.certificate_pem.strip()
