"""EF.SOD, the Document Security Object (ICAO 9303-10 §4.6.2, ICAO 9303-12 §A / RFC 5652).

``77 L ContentInfo`` (SignedData, version 3) whose eContent (type id-icao-mrtd-security-
ldsSecurityObject 2.23.136.1.1.1) is an LDSSecurityObject: hash algorithm + DataGroupHash list.
One SignerInfo with signed attributes (content-type, message-digest), signed by the Document
Signer certificate (DSC) embedded in ``certificates``.

asn1crypto gives the structure; every failure it raises is mapped to ``ParseError`` here. The
signature math is in ``passive_auth``.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import algos, cms, core
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds.sod_der import parse_fast
from idstation.agent.errors import ParseError

TAG_SOD = 0x77
OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
_PLAIN_ECDSA = "0.4.0.127.0.7.1.1.4.1."  # BSI TR-03111 ecdsa-plain-signatures
_PLAIN_HASHES = {"1": "sha1", "2": "sha224", "3": "sha256", "4": "sha384", "5": "sha512"}
_ASN1_ERRORS = (
    ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError, UnicodeError, RecursionError,
)  # fmt: skip


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]  # noqa: RUF012


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("lds_version", core.PrintableString), ("unicode_version", core.PrintableString)]  # noqa: RUF012


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class Sod:
    """What passive authentication needs from EF.SOD (no personal data here: hashes and state certs)."""

    hash_algorithm: str
    dg_hashes: dict[int, bytes]
    lds_version: str | None
    econtent_type: str
    econtent: bytes
    digest_algorithm: str
    signed_attrs: bytes | None  # DER of the SET (tag 31), as the signature covers it
    message_digest: bytes | None
    content_type_attr: str | None
    signature_algorithm: str  # "ecdsa", "ecdsa_plain", "rsassa_pkcs1v15", "rsassa_pss"
    signature_hash: str
    pss_salt_length: int | None
    signature: bytes
    certificates: tuple[bytes, ...]
    signer_issuer: bytes | None  # DER Name from issuerAndSerialNumber
    signer_serial: int | None
    signer_key_id: bytes | None  # subjectKeyIdentifier form of the signer id

    def __repr__(self) -> str:
        return f"Sod(hash={self.hash_algorithm!r}, dgs={sorted(self.dg_hashes)}, sig={self.signature_algorithm!r})"


MAX_PSS_SALT = 1024  # bytes: the whole encoded message of an 8192-bit RSA key (RFC 8017 §9.1.1)


def _signature_algorithm(signer: cms.SignerInfo, digest: str) -> tuple[str, str, int | None]:
    algo = signer["signature_algorithm"]
    dotted = algo["algorithm"].dotted
    if dotted.startswith(_PLAIN_ECDSA) and dotted[len(_PLAIN_ECDSA) :] in _PLAIN_HASHES:
        return "ecdsa_plain", _PLAIN_HASHES[dotted[len(_PLAIN_ECDSA) :]], None
    name = algo.signature_algo
    if name == "rsassa_pss":
        params = algo["parameters"]
        salt = params["salt_length"].native
        if not isinstance(salt, int) or not 0 <= salt <= MAX_PSS_SALT:
            raise ParseError("EF.SOD RSASSA-PSS salt length is out of range")
        return name, params["hash_algorithm"]["algorithm"].native, salt
    if name not in ("ecdsa", "rsassa_pkcs1v15"):
        raise ParseError("EF.SOD signature algorithm is not supported")
    try:
        hash_name = algo.hash_algo
    except ValueError:  # plain rsaEncryption / ecPublicKey OIDs: the digest algorithm names the hash
        hash_name = digest
    return name, hash_name, None


def _attributes(signer: cms.SignerInfo) -> tuple[bytes | None, bytes | None, str | None]:
    attrs = signer["signed_attrs"]
    if not attrs or attrs.native is None:
        return None, None, None
    digest = content_type = None
    for attr in attrs:
        kind = attr["type"].native
        if kind == "message_digest":
            digest = bytes(attr["values"][0].native)
        elif kind == "content_type":
            content_type = attr["values"][0].dotted
    der = attrs.dump()
    return b"\x31" + der[1:], digest, content_type


def _econtent(signed: cms.SignedData) -> tuple[str, bytes]:
    encap = signed["encap_content_info"]
    content = encap["content"]
    if content.native is None:
        raise ParseError("EF.SOD has no eContent")
    raw = content.contents if isinstance(content, core.ParsableOctetString) else content.native
    return encap["content_type"].dotted, bytes(raw)


MAX_DEPTH = 32  # a genuine EF.SOD (CMS with its certificate) nests about 12 levels


def _parse(data: bytes, fast: bool) -> Sod:
    tlv.check_depth(bytes(data), MAX_DEPTH)
    outer = tlv.decode(bytes(data), TAG_SOD)
    fields = parse_fast(outer.value) if fast else None  # the usual shape in strict DER, or None
    if fields is not None:
        return Sod(*fields)
    info = cms.ContentInfo.load(outer.value, strict=True)  # asn1crypto decides everything else
    if info["content_type"].native != "signed_data":
        raise ParseError("EF.SOD does not hold SignedData")
    signed = info["content"]
    econtent_type, econtent = _econtent(signed)
    tlv.check_depth(econtent, MAX_DEPTH)
    lso = LdsSecurityObject.load(econtent, strict=True)
    dg_hashes = {int(h["data_group_number"].native): bytes(h["data_group_hash_value"].native) for h in lso[2]}
    version = lso["lds_version_info"]
    lds_version = None if version.native is None else str(version["lds_version"].native)
    if len(signed["signer_infos"]) != 1:
        raise ParseError("EF.SOD must have exactly one signer")
    signer = signed["signer_infos"][0]
    digest = signer["digest_algorithm"]["algorithm"].native
    sig_name, sig_hash, salt = _signature_algorithm(signer, digest)
    signed_attrs, message_digest, content_type = _attributes(signer)
    certs = tuple(c.chosen.dump() for c in signed["certificates"] if c.name == "certificate")
    sid = signer["sid"]
    issuer = serial = key_id = None
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"].dump(), int(sid.chosen["serial_number"].native)
    else:
        key_id = bytes(sid.chosen.native)
    return Sod(
        lso["hash_algorithm"]["algorithm"].native, dg_hashes, lds_version, econtent_type, econtent, digest,
        signed_attrs, message_digest, content_type, sig_name, sig_hash, salt, bytes(signer["signature"].native),
        certs, issuer, serial, key_id,
    )  # fmt: skip


def parse_sod(data: bytes, *, fast: bool = True) -> Sod:
    """Parse EF.SOD; any structural problem is a ``ParseError`` (never an asn1crypto exception).

    The usual shape is read by :mod:`.sod_der` (same result, a fraction of the time); ``fast=False``
    makes asn1crypto read every EF.SOD (the tests and the benchmark compare both).
    """
    try:
        return _parse(data, fast)
    except ParseError:
        raise
    except _ASN1_ERRORS as exc:
        raise ParseError("EF.SOD is not a valid CMS SignedData with an LDS security object") from exc
