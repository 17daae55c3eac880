"""Passive Authentication (ICAO 9303-11 §5.1, 9303-12): are the data groups the issuer's?

1. Each data group read is hashed with the SOD's algorithm and compared with its DataGroupHash.
2. The SignerInfo: the signed attributes' content-type is the eContent type and their
   message-digest is the hash of the eContent; the signature over the signed attributes (DER SET)
   verifies with the Document Signer certificate (DSC) embedded in the SOD.
3. The DSC chains to a configured CSCA: issuer name (and key identifier) match, the CSCA's key
   verifies the DSC's signature, and the DSC was issued (its notBefore) while that CSCA could sign:
   within the CSCA's PrivateKeyUsagePeriod when it has one, else within its validity (9303-12
   §7.1: a CSCA outlives its signing period; a DSC dated outside it is not the issuer's).
4. The DSC is within its validity at ``now``.

Results: "ok", "failed" (with a reason), "unknown_csca" (all good but no configured CSCA issued the
DSC), "signer_expired", "not_checked" (no SOD). Bad cryptographic data gives a verdict, never an
exception (a SOD that does not parse at all is a "failed" verdict too).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.utils import CryptographyDeprecationWarning
from idstation.agent.emrtd.lds.sod import Sod, parse_sod
from idstation.agent.emrtd.trust import TrustStore, load_certificate
from idstation.agent.errors import ParseError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}  # fmt: skip
_CRYPTO_ERRORS = (InvalidSignature, ValueError, TypeError, OverflowError, UnsupportedAlgorithm)


@dataclass(frozen=True, slots=True)
class PassiveVerdict:
    result: str
    reason: str | None = None
    hash_algorithm: str | None = None
    data_groups: dict[int, str] = field(default_factory=dict)  # n → "ok" | "mismatch" | "not_in_sod" | "not_read"
    signer: dict[str, str] | None = None
    csca: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result}
        if self.reason:
            out["reason"] = self.reason
        if self.hash_algorithm:
            out["hash_algorithm"] = self.hash_algorithm
        out["data_groups"] = {f"DG{n}": status for n, status in sorted(self.data_groups.items())}
        out["signer"] = self.signer
        out["csca"] = self.csca
        return out


def _describe(cert: x509.Certificate) -> dict[str, str]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _digest(name: str, data: bytes) -> bytes:
    if name not in _HASHES:
        raise ValueError("unsupported hash algorithm")
    return hashlib.new(name, data).digest()


def _dg_status(sod: Sod, data_groups: dict[int, bytes]) -> dict[int, str]:
    status = {n: "not_read" for n in sod.dg_hashes}
    for n, data in data_groups.items():
        if n not in sod.dg_hashes:
            status[n] = "not_in_sod"
        else:
            status[n] = "ok" if _digest(sod.hash_algorithm, data) == sod.dg_hashes[n] else "mismatch"
    return status


def _signer_certificate(sod: Sod) -> x509.Certificate | None:
    certs = []
    for der in sod.certificates:
        try:
            certs.append(load_certificate(der))
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
            continue
    for cert in certs:
        if sod.signer_serial is not None and cert.serial_number == sod.signer_serial:
            return cert
        if sod.signer_key_id is not None:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except (x509.ExtensionNotFound, ValueError):
                continue
            if ski == sod.signer_key_id:
                return cert
    return certs[0] if len(certs) == 1 else None


def _verify_signature(sod: Sod, cert: x509.Certificate) -> None:
    """Raise InvalidSignature (or ValueError/TypeError) when the SOD signature does not verify."""
    if sod.signed_attrs is None:
        signed = sod.econtent
    else:
        if sod.content_type_attr != sod.econtent_type:
            raise InvalidSignature("content-type attribute differs from the eContent type")
        if sod.message_digest != _digest(sod.digest_algorithm, sod.econtent):
            raise InvalidSignature("message-digest attribute differs from the eContent hash")
        signed = sod.signed_attrs
    key = cert.public_key()
    algorithm = _HASHES[sod.signature_hash]() if sod.signature_hash in _HASHES else None
    if algorithm is None:
        raise ValueError("unsupported signature hash")
    signature = sod.signature
    if isinstance(key, ec.EllipticCurvePublicKey) and sod.signature_algorithm in ("ecdsa", "ecdsa_plain"):
        if sod.signature_algorithm == "ecdsa_plain":
            half = len(signature) // 2
            signature = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
        key.verify(signature, signed, ec.ECDSA(algorithm))
    elif isinstance(key, rsa.RSAPublicKey) and sod.signature_algorithm == "rsassa_pkcs1v15":
        key.verify(signature, signed, padding.PKCS1v15(), algorithm)
    elif isinstance(key, rsa.RSAPublicKey) and sod.signature_algorithm == "rsassa_pss":
        salt = sod.pss_salt_length if sod.pss_salt_length is not None else algorithm.digest_size
        key.verify(signature, signed, padding.PSS(padding.MGF1(algorithm), salt), algorithm)
    else:
        raise TypeError("signature algorithm does not match the signer's key")


def _signing_period(csca: x509.Certificate) -> tuple[datetime | None, datetime | None]:
    """When the CSCA's key may sign: its PrivateKeyUsagePeriod, else its validity."""
    try:
        usage = csca.extensions.get_extension_for_class(x509.PrivateKeyUsagePeriod).value
    except (x509.ExtensionNotFound, AttributeError):
        return csca.not_valid_before_utc, csca.not_valid_after_utc
    start, end = usage.not_before, usage.not_after
    return (
        start.replace(tzinfo=UTC) if start and start.tzinfo is None else start,
        end.replace(tzinfo=UTC) if end and end.tzinfo is None else end,
    )


def _issued_in_period(cert: x509.Certificate, csca: x509.Certificate) -> bool:
    start, end = _signing_period(csca)
    issued = cert.not_valid_before_utc
    return (start is None or start <= issued) and (end is None or issued <= end)


def _find_csca(cert: x509.Certificate, trust: TrustStore | None) -> tuple[x509.Certificate | None, str | None]:
    """The CSCA that verifiably issued ``cert`` (one whose signing period covers it first), and why
    none did: "signature" (a name-matching CSCA's key rejects it), "period" (a CSCA's key verifies it
    but the DSC is dated outside that CSCA's signing period), or None (no CSCA matches by name)."""
    why: str | None = None
    outside: x509.Certificate | None = None
    for csca in trust.issuers_of(cert) if trust is not None else []:
        try:
            cert.verify_directly_issued_by(csca)
        except _CRYPTO_ERRORS:
            why = why or "signature"
            continue
        if _issued_in_period(cert, csca):
            return csca, None
        outside = csca
    return None, "period" if outside is not None else why


def verify_passive(
    sod: bytes | Sod | None, data_groups: dict[int, bytes], trust: TrustStore | None, now: datetime | None = None
) -> PassiveVerdict:
    """Passive Authentication of ``data_groups`` (number → file bytes) against EF.SOD and ``trust``."""
    if sod is None or sod == b"":
        return PassiveVerdict("not_checked", "no EF.SOD")
    try:
        parsed = sod if isinstance(sod, Sod) else parse_sod(sod)
    except ParseError:
        return PassiveVerdict("failed", "EF.SOD is malformed")
    when = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        groups = _dg_status(parsed, data_groups)
    except ValueError:
        return PassiveVerdict("failed", "unsupported hash algorithm", parsed.hash_algorithm)
    with warnings.catch_warnings():  # state certificates bend RFC 5280 (negative serials): not our verdict
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # malformed names in hostile certificates
        try:
            return _check(parsed, groups, trust, when)
        except (ValueError, KeyError, TypeError, IndexError, UnsupportedAlgorithm, x509.InvalidVersion):
            # cryptography parses certificate fields lazily: a malformed DSC surfaces here
            return PassiveVerdict("failed", "document signer certificate is malformed", parsed.hash_algorithm, groups)


def _check(sod: Sod, groups: dict[int, str], trust: TrustStore | None, now: datetime) -> PassiveVerdict:  # noqa: PLR0911
    def verdict(result: str, reason: str | None = None, **extra: Any) -> PassiveVerdict:
        return PassiveVerdict(result, reason, sod.hash_algorithm, groups, **extra)

    bad = sorted(n for n, status in groups.items() if status in ("mismatch", "not_in_sod"))
    cert = _signer_certificate(sod)
    if cert is None:
        return verdict("failed", "no document signer certificate in EF.SOD")
    signer = _describe(cert)
    if bad:
        return verdict("failed", "data group hash mismatch: " + ", ".join(f"DG{n}" for n in bad), signer=signer)
    try:
        _verify_signature(sod, cert)
    except _CRYPTO_ERRORS:
        return verdict("failed", "EF.SOD signature does not verify", signer=signer)
    csca, why = _find_csca(cert, trust)
    if why == "period":
        return verdict("failed", "document signer was issued outside its CSCA's signing period", signer=signer)
    if why == "signature":
        return verdict("failed", "document signer certificate signature does not verify", signer=signer)
    if csca is None:
        return verdict("unknown_csca", "no configured CSCA issued the document signer", signer=signer)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return verdict("signer_expired", "document signer certificate is outside its validity", signer=signer,
                       csca=_describe(csca))  # fmt: skip
    return verdict("ok", signer=signer, csca=_describe(csca))
