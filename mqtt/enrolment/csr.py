"""The device's certificate signing request, and its verification on the central side.

The CSR is signed by the device's P-256 TLS key (the key the certificate will certify) and has
``CN = device_id``. A private, non-critical extension carries the device's Ed25519 signing public
key and an Ed25519 signature over ``"idstation-csr-v1" 0x00 device_id 0x00 TLS-SPKI-DER``: the CA
thereby learns the event-signing key, and the CSR proves possession of both keys and that they
belong to the same device. The device id is derived from the signing key (see ids.py), so a CSR
cannot claim another device's id.

Extension value (DER): ``SEQUENCE { OCTET STRING ed25519_public(32), OCTET STRING signature(64) }``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from idstation.mqtt.enrolment.errors import CsrError
from idstation.mqtt.enrolment.ids import device_id_for, key_id_for, spki_fingerprint


class CsrKeys(Protocol):
    """What building a CSR needs of the device's key store (``provisioning.keys.KeyStore``)."""

    def signing_public_raw(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...

    def tls_private_key(self) -> ec.EllipticCurvePrivateKey: ...

# 2.25.<UUID> arc (ITU-T X.667): needs no registration.
DEVICE_KEY_OID = x509.ObjectIdentifier("2.25.285881517839315459957615877262376649672")
_PROOF_LABEL = b"idstation-csr-v1"


def _proof_message(device_id: str, tls_public: ec.EllipticCurvePublicKey) -> bytes:
    spki = tls_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _PROOF_LABEL + b"\x00" + device_id.encode("ascii") + b"\x00" + spki


def _encode_ext(public_raw: bytes, signature: bytes) -> bytes:
    body = b"\x04\x20" + public_raw + b"\x04\x40" + signature
    return bytes([0x30, len(body)]) + body


def _decode_ext(value: bytes) -> tuple[bytes, bytes]:
    if len(value) != 2 + 2 + 32 + 2 + 64 or value[:4] != b"\x30\x64\x04\x20" or value[36:38] != b"\x04\x40":
        raise CsrError("device key extension is malformed")
    return value[4:36], value[38:102]


def build_csr(store: CsrKeys) -> bytes:
    """A PEM CSR for the device whose keys are in ``store``."""
    public_raw = store.signing_public_raw()
    device_id = device_id_for(public_raw)
    tls_key = store.tls_private_key()
    proof = store.sign(_proof_message(device_id, tls_key.public_key()))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .add_extension(x509.UnrecognizedExtension(DEVICE_KEY_OID, _encode_ext(public_raw, proof)), critical=False)
        .sign(tls_key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class CsrInfo:
    """What a verified CSR says about the device."""

    device_id: str
    key_id: str
    signing_public_raw: bytes
    tls_public_key: ec.EllipticCurvePublicKey
    tls_fingerprint: str
    csr: x509.CertificateSigningRequest


MAX_CSR = 8 * 1024  # a real one is under 1 KiB


@contextlib.contextmanager
def _x509_errors(what: str) -> Iterator[None]:
    """Map the X.509 library's exceptions for a hostile CSR to CsrError (at the edge)."""
    try:
        yield
    except x509.InvalidVersion:
        raise CsrError(f"{what}: unsupported CSR version") from None
    except UnsupportedAlgorithm:
        raise CsrError(f"{what}: unsupported key or signature algorithm") from None
    except (ValueError, TypeError):
        raise CsrError(f"{what}: malformed") from None


def verify_csr(data: bytes) -> CsrInfo:
    """Parse and check a CSR (PEM or DER); CsrError names the first rule it breaks."""
    csr = _load(data)
    with _x509_errors("CSR signature"):
        signature_ok = csr.is_signature_valid
    if not signature_ok:
        raise CsrError("CSR self-signature does not verify")
    with _x509_errors("CSR key"):
        tls_public = csr.public_key()
    if not isinstance(tls_public, ec.EllipticCurvePublicKey) or not isinstance(tls_public.curve, ec.SECP256R1):
        raise CsrError("CSR key is not a P-256 key")
    with _x509_errors("CSR subject"):
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or not isinstance(cns[0].value, str):
        raise CsrError("CSR subject must hold exactly one common name")
    device_id = cns[0].value
    try:
        with _x509_errors("CSR extensions"):
            ext = csr.extensions.get_extension_for_oid(DEVICE_KEY_OID).value
    except x509.ExtensionNotFound:
        raise CsrError("CSR lacks the device signing-key extension") from None
    if not isinstance(ext, x509.UnrecognizedExtension):
        raise CsrError("device key extension is malformed")
    public_raw, proof = _decode_ext(ext.value)
    if device_id_for(public_raw) != device_id:
        raise CsrError("CSR common name is not the device id of its signing key")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_raw).verify(proof, _proof_message(device_id, tls_public))
    except (InvalidSignature, ValueError):
        raise CsrError("CSR signing-key proof does not verify") from None
    return CsrInfo(
        device_id=device_id,
        key_id=key_id_for(public_raw),
        signing_public_raw=public_raw,
        tls_public_key=tls_public,
        tls_fingerprint=spki_fingerprint(tls_public),
        csr=csr,
    )


def _load(data: bytes) -> x509.CertificateSigningRequest:
    if not isinstance(data, bytes | bytearray):
        raise TypeError("CSR must be bytes")
    if len(data) > MAX_CSR:
        raise CsrError(f"CSR larger than {MAX_CSR} bytes")
    with _x509_errors("not a certificate signing request"):
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(bytes(data))
        return x509.load_der_x509_csr(bytes(data))
