"""Trust anchors for Passive Authentication: CSCA certificates (ICAO 9303-12 §5, §9 master lists).

``TrustStore.from_dir(path)`` loads every certificate under ``path`` (recursively): PEM or DER in
``.pem``/``.crt``/``.cer``/``.der`` files, and ICAO master lists (``.ml``: CMS SignedData whose
eContent, id-icao-cscaMasterList 2.23.136.1.1.2, is ``CscaMasterList ::= SEQUENCE { version,
certList SET OF Certificate }``). Private keys and other files are ignored; unreadable files are
skipped with a warning. The master list's own signature is not checked: the directory is
configuration the operator installs, and each CSCA in it is a trust anchor.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning
from idstation.agent.errors import ConfigError
from idstation.hal.logs import get_logger

log = get_logger(__name__)

CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der"}
MASTER_LIST_SUFFIX = ".ml"
OID_CSCA_MASTER_LIST = "2.23.136.1.1.2"
MAX_FILE_BYTES = 16 * 1024 * 1024


class _CertificateSet(core.SetOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    _fields = [("version", core.Integer), ("cert_list", _CertificateSet)]  # noqa: RUF012


def load_certificate(der: bytes) -> x509.Certificate:
    """A DER certificate; tolerates RFC 5280 deviations real state certificates have (negative serials)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # malformed names in hostile certificates
        return x509.load_der_x509_certificate(der)


def _pem_certificates(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []  # a private key, a CSR or another PEM object: not a trust anchor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # malformed names in hostile certificates
        return x509.load_pem_x509_certificates(data)


def master_list_certificates(data: bytes) -> list[x509.Certificate]:
    """CSCA certificates from an ICAO master list (CMS SignedData)."""
    info = cms.ContentInfo.load(data, strict=True)
    if info["content_type"].native != "signed_data":
        raise ValueError("master list is not SignedData")
    encap = info["content"]["encap_content_info"]
    if encap["content_type"].dotted != OID_CSCA_MASTER_LIST:
        raise ValueError("not a CSCA master list")
    content = encap["content"]
    raw = content.contents if isinstance(content, core.ParsableOctetString) else content.native
    certs = []
    for cert in CscaMasterList.load(bytes(raw), strict=True)["cert_list"]:
        try:
            certs.append(load_certificate(cert.dump()))
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
            log.warning("master_list_certificate_skipped", reason="unsupported certificate encoding")
    return certs


def _load_file(path: Path) -> list[x509.Certificate]:
    suffix = path.suffix.lower()
    if suffix not in CERT_SUFFIXES and suffix != MASTER_LIST_SUFFIX:
        return []
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError("file is too large for a certificate")
    data = path.read_bytes()
    if suffix == MASTER_LIST_SUFFIX:
        return master_list_certificates(data)
    if data.lstrip().startswith(b"-----BEGIN"):
        return _pem_certificates(data)
    return [load_certificate(data)]


class TrustStore:
    """A set of CSCA certificates, looked up by subject name and key identifier."""

    def __init__(self, certificates: Iterable[x509.Certificate] = ()) -> None:
        unique: dict[bytes, x509.Certificate] = {}
        for cert in certificates:
            unique.setdefault(cert.fingerprint(hashes.SHA256()), cert)
        self.certificates: tuple[x509.Certificate, ...] = tuple(unique.values())

    def __len__(self) -> int:
        return len(self.certificates)

    def __repr__(self) -> str:
        return f"TrustStore({len(self)} CSCA certificates)"

    @classmethod
    def from_dir(cls, path: str | Path) -> TrustStore:
        """Load every CSCA certificate under ``path`` (a directory, or a single file)."""
        root = Path(path)
        if not root.exists():
            raise ConfigError("CSCA path does not exist")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        certs: list[x509.Certificate] = []
        for file in files:
            try:
                certs.extend(_load_file(file))
            except (ValueError, TypeError, OSError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
                log.warning("trust_file_skipped", path=str(file), reason=type(exc).__name__)
        store = cls(certs)
        log.info("trust_store_loaded", path=str(root), certificates=len(store))
        return store

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """CSCAs whose subject is ``cert``'s issuer (and whose key id matches its AKI, when both exist)."""
        wanted = _authority_key_id(cert)
        found = []
        for csca in self.certificates:
            if csca.subject != cert.issuer:
                continue
            have = _subject_key_id(csca)
            if wanted is not None and have is not None and wanted != have:
                continue
            found.append(csca)
        return found


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except (x509.ExtensionNotFound, ValueError):
        return None


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None
