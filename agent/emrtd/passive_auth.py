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
exception (a SOD that does not parse at all is a "failed" verdict too). The DSC's own work (parse,
key, chain) is :mod:`.signer`'s, cached across cards by a :class:`~.signer.SignerCache` when given.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
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
from idstation.agent.emrtd.signer import CRYPTO_ERRORS, Signer, SignerCache
from idstation.agent.emrtd.trust import TrustStore, load_certificate
from idstation.agent.errors import ParseError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}  # fmt: skip


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


def _signer(sod: Sod, make: Callable[[bytes], Signer]) -> Signer | None:
    """The SOD's signer among its certificates: by serial (issuerAndSerialNumber) or key id, else the only one."""
    signers = []
    for der in sod.certificates:
        try:
            signers.append(make(der))
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
            continue
    for signer in signers:
        if sod.signer_serial is not None and signer.serial == sod.signer_serial:
            return signer
        if sod.signer_key_id is not None:
            try:
                ski = signer.key_id()
            except (x509.ExtensionNotFound, ValueError):
                continue
            if ski == sod.signer_key_id:
                return signer
    return signers[0] if len(signers) == 1 else None


def _verify_signature(sod: Sod, key: Any) -> None:
    """Raise InvalidSignature (or ValueError/TypeError) when the SOD signature does not verify."""
    if sod.signed_attrs is None:
        signed = sod.econtent
    else:
        if sod.content_type_attr != sod.econtent_type:
            raise InvalidSignature("content-type attribute differs from the eContent type")
        if sod.message_digest != _digest(sod.digest_algorithm, sod.econtent):
            raise InvalidSignature("message-digest attribute differs from the eContent hash")
        signed = sod.signed_attrs
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


def verify_passive(
    sod: bytes | Sod | None,
    data_groups: dict[int, bytes],
    trust: TrustStore | None,
    now: datetime | None = None,
    *,
    signers: SignerCache | None = None,
) -> PassiveVerdict:
    """Passive Authentication of ``data_groups`` (number → file bytes) against EF.SOD and ``trust``.

    ``signers`` (a :class:`SignerCache` made for this ``trust``) keeps each Document Signer's parse
    and chain for the next card it signed: same verdicts, less work (the centre's re-check).
    """
    if signers is not None and signers.trust is not trust:
        raise TypeError("the signer cache was made for another trust store")
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
    make = signers.signer if signers is not None else (lambda der: Signer(load_certificate(der), trust))
    with warnings.catch_warnings():  # state certificates bend RFC 5280 (negative serials): not our verdict
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # malformed names in hostile certificates
        try:
            return _check(parsed, groups, make, when)
        except (ValueError, KeyError, TypeError, IndexError, UnsupportedAlgorithm, x509.InvalidVersion):
            # cryptography parses certificate fields lazily: a malformed DSC surfaces here
            return PassiveVerdict("failed", "document signer certificate is malformed", parsed.hash_algorithm, groups)


def _check(sod: Sod, groups: dict[int, str], make: Callable[[bytes], Signer], now: datetime) -> PassiveVerdict:  # noqa: PLR0911
    def verdict(result: str, reason: str | None = None, **extra: Any) -> PassiveVerdict:
        return PassiveVerdict(result, reason, sod.hash_algorithm, groups, **extra)

    bad = sorted(n for n, status in groups.items() if status in ("mismatch", "not_in_sod"))
    found = _signer(sod, make)
    if found is None:
        return verdict("failed", "no document signer certificate in EF.SOD")
    signer = found.described()
    if bad:
        return verdict("failed", "data group hash mismatch: " + ", ".join(f"DG{n}" for n in bad), signer=signer)
    try:
        _verify_signature(sod, found.public_key())
    except CRYPTO_ERRORS:
        return verdict("failed", "EF.SOD signature does not verify", signer=signer)
    csca, why = found.chain()
    if why == "period":
        return verdict("failed", "document signer was issued outside its CSCA's signing period", signer=signer)
    if why == "signature":
        return verdict("failed", "document signer certificate signature does not verify", signer=signer)
    if csca is None:
        return verdict("unknown_csca", "no configured CSCA issued the document signer", signer=signer)
    if not found.valid_at(now):
        return verdict("signer_expired", "document signer certificate is outside its validity", signer=signer,
                       csca=found.csca_described())  # fmt: skip
    return verdict("ok", signer=signer, csca=found.csca_described())
