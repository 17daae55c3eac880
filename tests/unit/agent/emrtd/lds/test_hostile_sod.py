"""EF.SOD with an absurd RSASSA-PSS salt length: a failed passive check, never an escaping error."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds.build import encode_sod
from idstation.agent.emrtd.lds.sod import parse_sod
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.emrtd.virtual_card.image import FID_DG, FID_SOD
from idstation.agent.errors import ParseError
from idstation.hal.reader_sim import SimReader

from tests.unit.agent.emrtd.protocol.chips import CAN, FILES, image


def _rsa_dsc() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, "DS")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(7).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def _with_salt(sod: bytes, salt: int) -> bytes:
    info = cms.ContentInfo.load(tlv.decode(sod, 0x77).value)
    algorithm = info["content"]["signer_infos"][0]["signature_algorithm"]
    algorithm["parameters"]["salt_length"] = salt
    return tlv.encode(0x77, cms.ContentInfo.load(info.dump(force=True)).dump())


@functools.cache
def pss_sod_bytes() -> bytes:
    """An EF.SOD over the protocol image's data groups, RSASSA-PSS signed by a throw-away DSC."""
    cert, key = _rsa_dsc()
    groups = {n: FILES[FID_DG[n]] for n in (1, 13, 14, 15)}
    return encode_sod(groups, cert, key, rsa_scheme="rsassa_pss")


@pytest.fixture(scope="module")
def pss_sod() -> bytes:
    return pss_sod_bytes()


@pytest.mark.parametrize("salt", [2**31, 2**64, -1, 1025])
def test_absurd_pss_salt_is_a_parse_error(pss_sod: bytes, salt: int) -> None:
    with pytest.raises(ParseError, match="salt"):
        parse_sod(_with_salt(pss_sod, salt))


def test_chip_with_absurd_pss_salt_reads_with_passive_failed(pss_sod: bytes) -> None:
    reader = SimReader()
    chip_image = image(files={FID_SOD: _with_salt(pss_sod, 2**31)})
    reader.insert(VirtualChip(chip_image), atr=chip_image.atr, extended_length=True, max_response=65536)
    conn = reader.wait_for_card(1.0)
    assert conn is not None
    result = read_document(conn, [CAN], ReadPolicy(active_auth=False, chip_auth=False))
    passive = result.verification["passive"]
    assert passive["result"] == "failed"
    assert "malformed" in passive["reason"]


def _with_deep_attribute(sod: bytes, levels: int) -> bytes:
    """An extra signed attribute of an unknown type whose value nests ``levels`` SEQUENCEs."""
    info = cms.ContentInfo.load(tlv.decode(sod, 0x77).value)
    signer = info["content"]["signer_infos"][0]
    inner = b"\x05\x00"
    for _ in range(levels):
        inner = tlv.encode(0x30, inner)
    extra = tlv.encode(0x30, tlv.encode(0x06, bytes.fromhex("2a030405")) + tlv.encode(0x31, inner))
    body = tlv.decode(signer["signed_attrs"].dump()).value + extra
    signer["signed_attrs"] = cms.CMSAttributes.load(tlv.encode(0x31, body))
    return tlv.encode(0x77, cms.ContentInfo.load(info.dump(force=True)).dump())


def test_deeply_nested_sod_under_the_file_cap_is_a_parse_error(pss_sod: bytes) -> None:
    hostile = _with_deep_attribute(pss_sod, 8000)
    assert len(hostile) < 64 * 1024
    with pytest.raises(ParseError, match="nesting"):
        parse_sod(hostile)
