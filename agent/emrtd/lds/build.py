"""Encoders for the virtual card's files (the parsers' mirror images).

EF.CardAccess and DG14 hold SecurityInfos (ICAO 9303-11 §9.2, BSI TR-03110-3 §A.1.1):
- PACEInfo ::= SEQUENCE { protocol OID, version INTEGER (2), parameterId INTEGER }
  id-PACE-ECDH-GM-AES-CBC-CMAC-128 = 0.4.0.127.0.7.2.2.4.2.2; parameter 13 = brainpoolP256r1,
  12 = NIST P-256 (ICAO 9303-11 §9.5.1 table of standardized domain parameters).
- ChipAuthenticationInfo ::= SEQUENCE { protocol id-CA-ECDH-AES-CBC-CMAC-128 (0.4.0.127.0.7.2.2.3.2.2),
  version INTEGER (1), keyId INTEGER OPTIONAL }
- ChipAuthenticationPublicKeyInfo ::= SEQUENCE { protocol id-PK-ECDH (0.4.0.127.0.7.2.2.1.2),
  chipAuthenticationPublicKey SubjectPublicKeyInfo, keyId INTEGER OPTIONAL }
- ActiveAuthenticationInfo ::= SEQUENCE { protocol id-AA (2.23.136.1.1.5), version INTEGER (1),
  signatureAlgorithm OID } (ecdsa-plain-SHA256 0.4.0.127.0.7.1.1.4.1.3, BSI TR-03111).
EF.SOD: CMS SignedData v3 (RFC 5652) over an LDSSecurityObject (ICAO 9303-10 §4.6.2.2).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds.com import encode_com
from idstation.agent.emrtd.lds.dg1 import encode_dg1
from idstation.agent.emrtd.lds.dg2 import encode_dg2
from idstation.agent.emrtd.lds.dg13 import encode_dg13
from idstation.agent.emrtd.lds.dg15 import encode_dg15
from idstation.agent.emrtd.lds.sod import OID_LDS_SECURITY_OBJECT, TAG_SOD, LdsSecurityObject

__all__ = [
    "OID_AA",
    "OID_CA_ECDH_AES128",
    "OID_PACE_ECDH_GM_AES128",
    "OID_PK_ECDH",
    "encode_card_access",
    "encode_com",
    "encode_dg1",
    "encode_dg2",
    "encode_dg13",
    "encode_dg14",
    "encode_dg15",
    "encode_sod",
]

OID_PACE_ECDH_GM_AES128 = "0.4.0.127.0.7.2.2.4.2.2"
OID_CA_ECDH_AES128 = "0.4.0.127.0.7.2.2.3.2.2"
OID_PK_ECDH = "0.4.0.127.0.7.2.2.1.2"
OID_AA = "2.23.136.1.1.5"
OID_ECDSA_PLAIN_SHA256 = "0.4.0.127.0.7.1.1.4.1.3"
PARAM_BRAINPOOL_P256R1 = 13
PARAM_NIST_P256 = 12
TAG_DG14 = 0x6E


def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


def _int(value: int) -> bytes:
    return bytes(core.Integer(value).dump())


def _seq(*parts: bytes) -> bytes:
    return tlv.encode(0x30, b"".join(parts))


def pace_info(parameter_id: int = PARAM_BRAINPOOL_P256R1) -> bytes:
    return _seq(_oid(OID_PACE_ECDH_GM_AES128), _int(2), _int(parameter_id))


def encode_card_access(parameter_ids: tuple[int, ...] = (PARAM_BRAINPOOL_P256R1,)) -> bytes:
    """EF.CardAccess: SET OF PACEInfo (generic mapping, AES-128) for each parameter id."""
    return tlv.encode(0x31, b"".join(pace_info(p) for p in parameter_ids))


def encode_dg14(
    ca_public_key: ec.EllipticCurvePublicKey, *, aa_ecdsa: bool = True, parameter_id: int = PARAM_BRAINPOOL_P256R1
) -> bytes:
    """DG14: ChipAuthenticationInfo + ChipAuthenticationPublicKeyInfo (+ PACEInfo, ActiveAuthenticationInfo)."""
    spki = ca_public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    infos = [
        _seq(_oid(OID_CA_ECDH_AES128), _int(1)),
        _seq(_oid(OID_PK_ECDH), spki),
        pace_info(parameter_id),
    ]
    if aa_ecdsa:
        infos.append(_seq(_oid(OID_AA), _int(1), _oid(OID_ECDSA_PLAIN_SHA256)))
    return tlv.encode(TAG_DG14, tlv.encode(0x31, b"".join(infos)))


def lds_security_object(data_groups: dict[int, bytes]) -> bytes:
    """LDSSecurityObject v0 with SHA-256 hashes of ``data_groups`` (number → file bytes)."""
    security_object = LdsSecurityObject(
        {
            "version": 0,
            "hash_algorithm": {"algorithm": "sha256"},
            "data_group_hash_values": [
                {"data_group_number": n, "data_group_hash_value": hashlib.sha256(data_groups[n]).digest()}
                for n in sorted(data_groups)
            ],
        }
    )
    return bytes(security_object.dump())


def _sign(key: Any, data: bytes, scheme: str) -> tuple[bytes, dict[str, Any]]:
    """(signature, SignatureAlgorithmIdentifier) for the DSC's ``key`` over ``data`` with SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256())), {"algorithm": "sha256_ecdsa"}
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("DSC key must be EC or RSA")
    if scheme == "rsassa_pss":
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
        params = {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
            "salt_length": 32,
        }
        return key.sign(data, pss, hashes.SHA256()), {"algorithm": "rsassa_pss", "parameters": params}
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256()), {"algorithm": "sha256_rsa"}


def encode_sod(
    data_groups: dict[int, bytes],
    dsc_certificate: x509.Certificate,
    dsc_key: Any,
    *,
    signing_time: datetime | None = None,
    rsa_scheme: str = "rsassa_pkcs1v15",
) -> bytes:
    """EF.SOD: ``77 { ContentInfo SignedData v3 }`` signed by the DSC (embedded), SHA-256.

    EC keys sign with ECDSA-with-SHA256; RSA keys with PKCS#1 v1.5 or, with
    ``rsa_scheme="rsassa_pss"``, RSASSA-PSS (MGF1-SHA256, salt 32).
    """
    econtent = lds_security_object(data_groups)
    when = signing_time or datetime.now(UTC)
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [OID_LDS_SECURITY_OBJECT]},
            {"type": "signing_time", "values": [cms.Time(name="utc_time", value=when)]},
            {"type": "message_digest", "values": [hashlib.sha256(econtent).digest()]},
        ]
    )
    signature, signature_algorithm = _sign(dsc_key, signed_attrs.dump(), rsa_scheme)
    cert = asn1_x509.Certificate.load(dsc_certificate.public_bytes(serialization.Encoding.DER))
    signer = {
        "version": "v1",
        "sid": {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}},
        "digest_algorithm": {"algorithm": "sha256"},
        "signed_attrs": signed_attrs,
        "signature_algorithm": signature_algorithm,
        "signature": signature,
    }
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {
                "content_type": OID_LDS_SECURITY_OBJECT,
                "content": core.ParsableOctetString(econtent),
            },
            "certificates": [cert],
            "signer_infos": [signer],
        }
    )
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return tlv.encode(TAG_SOD, info.dump())
