"""The enrolment bundle: what the central side gives a box (a file on a USB stick for offline
enrolment; the payload of the online enrolment response), and its signature by the fleet CA::

    {"format": "idstation-bundle/1", "device_id", "site", "counter", "broker_url",
     "certificate_pem", "fleet_ca_pem", "central_public_key_pem", "issued_at", ["receipt_keys_pem",]
     "signature": base64(ECDSA-SHA256 by the fleet CA over the canonical JSON of every other key)}

The box's checks and the atomic install are ``idstation.provisioning.bundle`` (verify_bundle, apply_bundle).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from idstation.mqtt.enrolment.errors import BundleError

__all__ = ["FORMAT", "MAX_BUNDLE", "Bundle", "load_cert", "parse_bundle", "sign_bundle", "verify_issued_by"]

FORMAT = "idstation-bundle/1"
MAX_BUNDLE = 64 * 1024
_OPTIONAL = ("receipt_keys_pem",)


@dataclass(frozen=True, slots=True)
class Bundle:
    device_id: str
    site: str
    counter: str
    broker_url: str
    certificate_pem: str
    fleet_ca_pem: str
    central_public_key_pem: str
    issued_at: str
    signature: str = ""
    receipt_keys_pem: str = ""

    def signed_part(self) -> bytes:
        doc = asdict(self)
        doc.pop("signature")
        if not doc["receipt_keys_pem"]:
            doc.pop("receipt_keys_pem")
        doc["format"] = FORMAT
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, **asdict(self)}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def certificate(self) -> x509.Certificate:
        return load_cert(self.certificate_pem, "certificate")

    def fleet_ca(self) -> x509.Certificate:
        return load_cert(self.fleet_ca_pem, "fleet CA certificate")


def sign_bundle(bundle: Bundle, sign: Any) -> Bundle:
    """Return ``bundle`` with its signature made by ``sign(bytes) -> DER`` (``FleetCA.sign_blob``)."""
    signature = base64.b64encode(sign(bundle.signed_part())).decode("ascii")
    return Bundle(**{**asdict(bundle), "signature": signature})


def parse_bundle(data: bytes) -> Bundle:
    """Parse a bundle's JSON; BundleError when it is not one."""
    if len(data) > MAX_BUNDLE:
        raise BundleError("bundle is too large")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BundleError("bundle is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"bundle format is not {FORMAT}")
    fields = [name for name in Bundle.__dataclass_fields__ if name not in _OPTIONAL]
    missing = [name for name in fields if name not in doc]
    if missing:
        raise BundleError(f"bundle lacks {', '.join(sorted(missing))}")
    values = {name: doc[name] for name in fields} | {name: doc.get(name, "") for name in _OPTIONAL}
    if not all(isinstance(value, str) for value in values.values()):
        raise BundleError("bundle fields must be strings")
    return Bundle(**values)


def verify_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True when ``cert`` is directly signed by ``ca_cert``."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def load_cert(pem: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise BundleError(f"bundle {what} is not a PEM certificate") from None
