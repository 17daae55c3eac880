"""EF.SOD's fast path: the usual shape of the SignedData, read straight from its DER (issue 13).

Theory of operation. :func:`~.sod.parse_sod` builds the :class:`~.sod.Sod` with asn1crypto,
whose generic object model costs about 250 us per EF.SOD, a third of the centre's re-check of an
identity event. Nearly every EF.SOD has one shape: ContentInfo → SignedData v1/v3 with the
digest algorithms, the LDS security object as eContent, the certificates, one SignerInfo with
content-type, signing-time and message-digest attributes, no CRLs, no unsigned attributes.
:func:`parse_fast` reads exactly that shape, in strict DER (minimal lengths, single-byte tags,
known algorithm identifiers by their exact encodings), and returns ``None`` for anything else;
``parse_sod`` then asks asn1crypto, which stays the judge of every other input (and of every
error). So the fast path only ever answers where asn1crypto would give the same :class:`Sod`
(the tests compare both on genuine and on mutated EF.SODs); it never rejects anything itself.
The signing time is checked as asn1crypto checks it (a UTCTime that makes a datetime).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from asn1crypto import algos, core
from idstation.agent.emrtd.lds.der import Item, NotUsual, der_items

__all__ = ["parse_fast"]

Fields = tuple[Any, ...]  # Sod's fields, in order (sod.py makes the Sod: no import cycle)
OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"  # as sod.py


def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).contents)


_HASH_NAMES = ("sha1", "sha224", "sha256", "sha384", "sha512")
_DIGESTS = {_oid(algos.DigestAlgorithmId.unmap(name)): name for name in _HASH_NAMES}
_SIGNATURES = {
    _oid(algos.SignedDigestAlgorithmId.unmap(f"{name}_{kind}")): (scheme, name)
    for name in _HASH_NAMES
    for kind, scheme in (("ecdsa", "ecdsa"), ("rsa", "rsassa_pkcs1v15"))
} | {_oid(f"0.4.0.127.0.7.1.1.4.1.{n}"): ("ecdsa_plain", name) for n, name in enumerate(_HASH_NAMES, 1)}
_SIGNED_DATA = _oid("1.2.840.113549.1.7.2")
_LDS = _oid(OID_LDS_SECURITY_OBJECT)
_CONTENT_TYPE = _oid("1.2.840.113549.1.9.3")
_MESSAGE_DIGEST = _oid("1.2.840.113549.1.9.4")
_SIGNING_TIME = _oid("1.2.840.113549.1.9.5")
_NO_PARAMS = (None, b"\x05\x00")


def _expect(data: bytes, item: Item, tag: int) -> list[Item]:
    if item[0] != tag:
        raise NotUsual
    return der_items(data, item[2], item[3])


def _value(data: bytes, item: Item, tag: int) -> bytes:
    if item[0] != tag:
        raise NotUsual
    return data[item[2] : item[3]]


def _integer(data: bytes, item: Item) -> int:
    raw = _value(data, item, 0x02)
    if not raw or (len(raw) > 1 and (raw[0], raw[1] & 0x80) in ((0x00, 0), (0xFF, 0x80))):
        raise NotUsual  # empty or not minimal
    return int.from_bytes(raw, "big", signed=True)


def _algorithm(data: bytes, item: Item) -> bytes:
    """The OID of an AlgorithmIdentifier with absent or NULL parameters."""
    parts = _expect(data, item, 0x30)
    if len(parts) not in (1, 2) or (len(parts) == 2 and data[parts[1][1] : parts[1][3]] not in _NO_PARAMS):
        raise NotUsual
    return _value(data, parts[0], 0x06)


def _single_value(data: bytes, attr: Item, tag: int) -> bytes:
    values = _expect(data, attr, 0x31)
    if len(values) != 1:
        raise NotUsual
    return _value(data, values[0], tag)


def _utc_time(raw: bytes) -> None:
    """A UTCTime ``YYMMDDhhmmssZ`` that names a real instant (asn1crypto makes it a datetime; so do we)."""
    if len(raw) != 13 or raw[12] != 0x5A or not raw[:12].isdigit():
        raise NotUsual  # other forms (offsets, no seconds) are asn1crypto's to judge
    year, month, day, hour, minute, second = (int(raw[i : i + 2]) for i in range(0, 12, 2))
    try:
        datetime(year + (2000 if year < 50 else 1900), month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise NotUsual from None


def _attributes(data: bytes, item: Item) -> tuple[bytes, bytes, str]:
    """(the SET as the signature covers it, message digest, content type) of the usual attributes."""
    digest = content_type = None
    seen = set()
    for attr in _expect(data, item, 0xA0):
        parts = _expect(data, attr, 0x30)
        if len(parts) != 2:
            raise NotUsual
        kind = _value(data, parts[0], 0x06)
        if kind in seen:
            raise NotUsual
        seen.add(kind)
        if kind == _MESSAGE_DIGEST:
            digest = _single_value(data, parts[1], 0x04)
        elif kind == _CONTENT_TYPE:
            if _single_value(data, parts[1], 0x06) != _LDS:
                raise NotUsual
            content_type = OID_LDS_SECURITY_OBJECT
        elif kind == _SIGNING_TIME:
            _utc_time(_single_value(data, parts[1], 0x17))
        else:
            raise NotUsual
    if digest is None or content_type is None:
        raise NotUsual
    return b"\x31" + data[item[1] + 1 : item[3]], digest, content_type


def _lds_security_object(econtent: bytes) -> tuple[str, dict[int, bytes], str | None]:
    top = der_items(econtent, 0, len(econtent))
    if len(top) != 1:
        raise NotUsual
    fields = _expect(econtent, top[0], 0x30)
    if len(fields) not in (3, 4):
        raise NotUsual
    _integer(econtent, fields[0])
    hash_name = _DIGESTS.get(_algorithm(econtent, fields[1]))
    if hash_name is None:
        raise NotUsual
    dg_hashes: dict[int, bytes] = {}
    for entry in _expect(econtent, fields[2], 0x30):
        number, value = _pair(econtent, entry)
        if number in dg_hashes:
            raise NotUsual
        dg_hashes[number] = value
    lds_version = None
    if len(fields) == 4:
        texts = [_value(econtent, part, 0x13) for part in _expect(econtent, fields[3], 0x30)]
        if len(texts) != 2 or not all(text.isascii() for text in texts):
            raise NotUsual
        lds_version = texts[0].decode("ascii")
    return hash_name, dg_hashes, lds_version


def _pair(data: bytes, entry: Item) -> tuple[int, bytes]:
    parts = _expect(data, entry, 0x30)
    if len(parts) != 2:
        raise NotUsual
    return _integer(data, parts[0]), _value(data, parts[1], 0x04)


def _signer_id(data: bytes, sid: Item) -> tuple[bytes | None, int | None, bytes | None]:
    if sid[0] == 0x80:
        return None, None, data[sid[2] : sid[3]]
    parts = _expect(data, sid, 0x30)
    if len(parts) != 2 or parts[0][0] != 0x30:
        raise NotUsual
    return data[parts[0][1] : parts[0][3]], _integer(data, parts[1]), None


def _content(data: bytes, item: Item, oid: bytes) -> Item:
    """The one item of a ``SEQUENCE { OID, [0] { item } }`` whose OID is ``oid`` (ContentInfo and
    EncapsulatedContentInfo have this shape)."""
    parts = _expect(data, item, 0x30)
    if len(parts) != 2 or _value(data, parts[0], 0x06) != oid:
        raise NotUsual
    wrapped = _expect(data, parts[1], 0xA0)
    if len(wrapped) != 1:
        raise NotUsual
    return wrapped[0]


def _signed_data(data: bytes) -> Fields:
    top = der_items(data, 0, len(data))
    if len(top) != 1:
        raise NotUsual
    fields = _expect(data, _content(data, top[0], _SIGNED_DATA), 0x30)
    if len(fields) != 5 or fields[3][0] != 0xA0:
        raise NotUsual  # version, digest algorithms, eContent, certificates, signer infos; no CRLs
    _integer(data, fields[0])
    for algorithm in _expect(data, fields[1], 0x31):
        _algorithm(data, algorithm)
    econtent = bytes(_value(data, _content(data, fields[2], _LDS), 0x04))  # nests 3 deep below: within MAX_DEPTH
    certificates = tuple(bytes(data[c[1] : c[3]]) for c in _expect(data, fields[3], 0xA0) if c[0] == 0x30 or _no())
    signers = _expect(data, fields[4], 0x31)
    if len(signers) != 1:
        raise NotUsual
    return _assemble(data, econtent, certificates, _expect(data, signers[0], 0x30))


def _no() -> bool:
    raise NotUsual


def _assemble(data: bytes, econtent: bytes, certificates: tuple[bytes, ...], signer: list[Item]) -> Fields:
    if len(signer) != 6:
        raise NotUsual  # version, sid, digest algorithm, signed attributes, signature algorithm, signature
    _integer(data, signer[0])
    issuer, serial, key_id = _signer_id(data, signer[1])
    digest = _DIGESTS.get(_algorithm(data, signer[2]))
    signed_attrs, message_digest, content_type = _attributes(data, signer[3])
    scheme = _SIGNATURES.get(_algorithm(data, signer[4]))
    if digest is None or scheme is None:
        raise NotUsual
    signature = bytes(_value(data, signer[5], 0x04))
    hash_name, dg_hashes, lds_version = _lds_security_object(econtent)
    return (
        hash_name, dg_hashes, lds_version, OID_LDS_SECURITY_OBJECT, econtent, digest, bytes(signed_attrs),
        bytes(message_digest), content_type, scheme[0], scheme[1], None, signature, certificates,
        None if issuer is None else bytes(issuer), serial, None if key_id is None else bytes(key_id),
    )  # fmt: skip


def parse_fast(content_info: bytes) -> Fields | None:
    """The :class:`~.sod.Sod` fields of the ContentInfo inside ``77``, when it has the usual shape; else None."""
    try:
        return _signed_data(bytes(content_info))
    except NotUsual:
        return None
