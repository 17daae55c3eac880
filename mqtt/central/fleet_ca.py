"""The fleet CA (central side): issues device client certificates and the broker's server certificate.

``CA_DIR`` holds ``ca_key.pem`` (P-256, 0600), ``ca.crt`` (self-signed, path length 0),
``serial`` bookkeeping in ``issued.jsonl`` and the certificate revocation list ``crl.pem`` that
the broker loads (mosquitto ``crlfile``) so a revoked box cannot even connect. The CA key also
signs enrolment bundles (bundle.py), which the box checks against the CA certificate it receives.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from idstation.hal.storage import make_private_dir, write_atomic
from idstation.mqtt.enrolment.csr import CsrInfo
from idstation.mqtt.enrolment.errors import CaError

log = structlog.get_logger(__name__)

CA_KEY = "ca_key.pem"
CA_CERT = "ca.crt"
CRL = "crl.pem"
ISSUED = "issued.jsonl"
DEVICE_CERT_DAYS = 397
CA_DAYS = 3650


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class IssuedCert:
    device_id: str
    serial: int
    not_after: dt.datetime
    pem: bytes


class FleetCA:
    """A fleet CA held in a directory."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        try:
            key = serialization.load_pem_private_key((self.directory / CA_KEY).read_bytes(), password=None)
            self.cert = x509.load_pem_x509_certificate((self.directory / CA_CERT).read_bytes())
        except FileNotFoundError:
            raise CaError(f"no fleet CA in {self.directory}: run `idstation central init-ca`") from None
        except ValueError:
            raise CaError(f"fleet CA files in {self.directory} are not PEM key/certificate") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError("fleet CA key is not an EC key")
        self._key = key

    def __repr__(self) -> str:
        return f"FleetCA({str(self.directory)!r})"

    @classmethod
    def create(cls, directory: Path | str, name: str = "idstation fleet CA", *, days: int = CA_DAYS) -> FleetCA:
        """Make a new CA in ``directory`` (refuses to overwrite an existing one)."""
        directory = Path(directory)
        if (directory / CA_KEY).exists():
            raise CaError(f"{directory} already holds a fleet CA")
        make_private_dir(directory, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _base(subject, subject, key.public_key(), _now() - dt.timedelta(minutes=5), days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(directory / CA_KEY, pem, mode=0o600)
        write_atomic(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
        ca = cls(directory)
        ca.write_crl([])
        log.info("fleet_ca_created", directory=str(directory))
        return ca

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def issue_device(self, info: CsrInfo, site: str, counter: str, *, days: int = DEVICE_CERT_DAYS) -> IssuedCert:
        """A TLS client certificate for a verified CSR (CN = device id, OU = counter, O = site)."""
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, site),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, counter),
                x509.NameAttribute(NameOID.COMMON_NAME, info.device_id),
            ]
        )
        builder = (
            _base(subject, self.cert.subject, info.tls_public_key, _now() - dt.timedelta(minutes=5), days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"urn:idstation:device:{info.device_id}")]),
                critical=False,
            )
        )
        return self._sign(builder, info.device_id)

    def issue_server(self, hostnames: list[str], *, days: int = DEVICE_CERT_DAYS) -> tuple[bytes, bytes]:
        """(key PEM, certificate PEM) for a broker reachable under ``hostnames`` (DNS names or IPs)."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
        builder = (
            _base(subject, self.cert.subject, key.public_key(), _now() - dt.timedelta(minutes=5), days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
        )
        issued = self._sign(builder, f"server:{hostnames[0]}")
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key_pem, issued.pem

    def sign_blob(self, data: bytes) -> bytes:
        """ECDSA-SHA256 signature (DER) with the CA key (bundles)."""
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def issued(self) -> list[dict[str, object]]:
        path = self.directory / ISSUED
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def revoke_device(self, device_id: str) -> int:
        """Revoke every certificate issued to ``device_id``; rewrites the CRL. Returns how many."""
        serials = {int(str(r["serial"])) for r in self.issued() if r.get("subject") == device_id}
        revoked = set(self._crl_serials()) | serials
        self.write_crl(sorted(revoked))
        log.info("fleet_ca_device_revoked", device_id=device_id, certificates=len(serials))
        return len(serials)

    def write_crl(self, serials: list[int]) -> None:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(days=30))
        )
        for serial in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        write_atomic(self.directory / CRL, crl.public_bytes(serialization.Encoding.PEM))

    def _crl_serials(self) -> list[int]:
        path = self.directory / CRL
        if not path.exists():
            return []
        crl = x509.load_pem_x509_crl(path.read_bytes())
        return [entry.serial_number for entry in crl]

    def _sign(self, builder: x509.CertificateBuilder, subject: str) -> IssuedCert:
        cert = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
        ).sign(self._key, hashes.SHA256())
        record = {"subject": subject, "serial": cert.serial_number, "not_after": cert.not_valid_after_utc.isoformat()}
        with (self.directory / ISSUED).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        return IssuedCert(
            subject, cert.serial_number, cert.not_valid_after_utc, cert.public_bytes(serialization.Encoding.PEM)
        )


def _base(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, start: dt.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
