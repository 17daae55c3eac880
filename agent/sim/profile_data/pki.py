"""A deterministic test PKI: a CSCA and a Document Signer (EC P-256), for virtual cards only.

Keys come from ``ec.derive_private_key`` over a hash of the seed, so every process builds the same
keys: a chip image made today chains to ``test_csca_pem()`` exported yesterday (the certificate
bytes differ between processes because ECDSA signatures are randomised; subject and key do not).
Never use these keys for anything but tests and demos: they are public.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_SEED = 0
UNKNOWN_CSCA_SEED = 4242  # a CSCA no box is told about (for "unknown_csca" scenarios)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CSCA_VALIDITY = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2045, 1, 1, tzinfo=UTC))
DSC_VALIDITY = (datetime(2021, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
EXPIRED_DSC_VALIDITY = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 12, 31, tzinfo=UTC))


def derive_key(label: str, curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    """A reproducible EC private key for ``label`` (test keys only)."""
    scalar = int.from_bytes(hashlib.sha512(b"idstation-test:" + label.encode()).digest(), "big")
    order = _P256_ORDER if curve is None or isinstance(curve, ec.SECP256R1) else _order(curve)
    return ec.derive_private_key(scalar % (order - 1) + 1, curve or ec.SECP256R1())


def _order(curve: ec.EllipticCurve) -> int:
    orders = {
        "brainpoolP256r1": 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
    }
    return orders[curve.name]


def _name(common_name: str, *, country: str = "VN", organisation: str = "idstation test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _serial(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big") | 1


@dataclass(frozen=True, slots=True)
class TestPki:
    """CSCA + DSC. ``create(seed)``; ``expired=True`` gives a DSC whose validity ended in 2020."""

    __test__ = False  # not a pytest test class

    csca_key: ec.EllipticCurvePrivateKey
    csca_certificate: x509.Certificate
    dsc_key: ec.EllipticCurvePrivateKey
    dsc_certificate: x509.Certificate
    seed: int = DEFAULT_SEED
    expired: bool = False

    def __repr__(self) -> str:
        return f"TestPki(seed={self.seed}, expired={self.expired})"

    @classmethod
    def create(cls, seed: int = DEFAULT_SEED, *, expired: bool = False) -> TestPki:
        csca_key = derive_key(f"csca:{seed}")
        csca_name = _name("idstation TEST CSCA" if seed == DEFAULT_SEED else f"idstation TEST CSCA {seed}")
        ski = x509.SubjectKeyIdentifier.from_public_key(csca_key.public_key())
        csca = (
            x509.CertificateBuilder()
            .subject_name(csca_name)
            .issuer_name(csca_name)
            .public_key(csca_key.public_key())
            .serial_number(_serial(f"csca:{seed}"))
            .not_valid_before(CSCA_VALIDITY[0])
            .not_valid_after(CSCA_VALIDITY[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(ski, critical=False)
            .sign(csca_key, hashes.SHA256())
        )
        dsc_key = derive_key(f"dsc:{seed}:{expired}")
        start, end = EXPIRED_DSC_VALIDITY if expired else DSC_VALIDITY
        dsc = (
            x509.CertificateBuilder()
            .subject_name(_name("idstation TEST DS" + (" expired" if expired else "")))
            .issuer_name(csca_name)
            .public_key(dsc_key.public_key())
            .serial_number(_serial(f"dsc:{seed}:{expired}"))
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(csca_key, hashes.SHA256())
        )
        return cls(csca_key, csca, dsc_key, dsc, seed, expired)

    @classmethod
    def unknown(cls, *, expired: bool = False) -> TestPki:
        """A PKI whose CSCA is not the built-in test CSCA: chips it signs give ``unknown_csca``."""
        return default_pki(UNKNOWN_CSCA_SEED, expired=expired)

    def csca_pem(self) -> bytes:
        return self.csca_certificate.public_bytes(serialization.Encoding.PEM)


@lru_cache(maxsize=8)
def default_pki(seed: int = DEFAULT_SEED, expired: bool = False) -> TestPki:
    return TestPki.create(seed, expired=expired)


def test_csca_pem() -> bytes:
    """PEM of the built-in test CSCA that every built-in profile chains to."""
    return default_pki().csca_pem()


test_csca_pem.__test__ = False  # type: ignore[attr-defined]
