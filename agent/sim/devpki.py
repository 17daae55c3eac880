"""A throw-away PKI for demos and tests: a CA, a loopback broker certificate, client certificates.

Production certificates come from the fleet CA (``idstation provision``); this only makes
``LocalBroker`` TLS/mTLS set-ups reproducible without openssl command lines.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DevPki", "make_dev_pki"]


@dataclass(frozen=True, slots=True)
class DevPki:
    ca_file: str
    server_cert: str
    server_key: str
    clients: dict[str, tuple[str, str]]  # CN -> (cert file, key file)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    *,
    ca: bool = False,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    if server_names:
        alt: list[x509.GeneralName] = []
        for n in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def make_dev_pki(
    directory: str | Path,
    clients: tuple[str, ...] | list[str] = (),
    server_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> DevPki:
    """Write ``ca.crt``, ``server.crt/key`` and ``<cn>.crt/key`` per client into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _cert("idstation test CA", ca_key, None, None, ca=True)
    (d / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("localhost", srv_key, ca_cert.subject, ca_key, server_names=server_names)
    (d / "server.crt").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    _write_key(d / "server.key", srv_key)
    out: dict[str, tuple[str, str]] = {}
    for cn in clients:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn, key, ca_cert.subject, ca_key, client=True)
        (d / f"{cn}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(d / f"{cn}.key", key)
        out[cn] = (str(d / f"{cn}.crt"), str(d / f"{cn}.key"))
    return DevPki(str(d / "ca.crt"), str(d / "server.crt"), str(d / "server.key"), out)
