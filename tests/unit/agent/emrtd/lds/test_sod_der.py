"""EF.SOD's fast path (lds/sod_der.py) answers only where asn1crypto gives the same Sod: compared on
genuine EF.SODs of every supported shape and on thousands of mutations of them (errors included)."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import pytest
from asn1crypto import cms, core
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds import sod_der
from idstation.agent.emrtd.lds.build import encode_sod
from idstation.agent.emrtd.lds.sod import OID_LDS_SECURITY_OBJECT, LdsSecurityObject, parse_sod
from idstation.agent.emrtd.virtual_card.image import FID_DG, FID_SOD
from idstation.agent.errors import ParseError
from idstation.agent.sim.profiles import build_chip_image, builtin_profiles

from tests.unit.agent.emrtd.lds.test_hostile_sod import _rsa_dsc

MUTATIONS = 250  # per shape: bounded, deterministic (seeded)


@functools.cache
def _genuine() -> bytes:
    return bytes(build_chip_image(builtin_profiles()["an"]).files[FID_SOD])


@functools.cache
def _rsa_sod(scheme: str) -> bytes:
    cert, key = _rsa_dsc()
    image = build_chip_image(builtin_profiles()["binh"])
    groups = {n: image.files[FID_DG[n]] for n in (1, 13, 15)}
    return encode_sod(groups, cert, key, rsa_scheme=scheme)


def _edit(sod: bytes, change: Callable[[Any], None]) -> bytes:
    info = cms.ContentInfo.load(tlv.decode(sod, 0x77).value)
    change(info["content"])
    return tlv.encode(0x77, info.dump(force=True))


def _signer(signed: Any) -> Any:
    return signed["signer_infos"][0]


def _set_lso(signed: Any, **fields: Any) -> None:
    encap = signed["encap_content_info"]
    lso = LdsSecurityObject.load(bytes(encap["content"].contents))
    for key, value in fields.items():
        lso[key] = value
    encap["content"] = core.ParsableOctetString(lso.dump(force=True))


def _drop_attribute(signed: Any, kind: str) -> None:
    signer = _signer(signed)
    signer["signed_attrs"] = cms.CMSAttributes([a for a in signer["signed_attrs"] if a["type"].native != kind])


def _add_attribute(signed: Any) -> None:
    signer = _signer(signed)
    extra = cms.CMSAttribute({"type": "1.2.3.4.5", "values": [core.OctetString(b"x")]})
    signer["signed_attrs"] = cms.CMSAttributes([*signer["signed_attrs"], extra])


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` (TLVs) with the TLV ``old`` replaced by ``new`` and every enclosing length fixed."""
    out = b""
    for item in tlv.iter_tlv(data):
        raw = item.encode()
        if raw == old:
            out += new
        elif item.constructed:
            out += tlv.encode(item.tag, _replace(item.value, old, new))
        else:
            out += raw
    return out


def _with_signing_time(sod: bytes, text: str) -> bytes:
    """The signing time's UTCTime text replaced as is (asn1crypto would refuse to build a bad one)."""
    signer = _signer(cms.ContentInfo.load(tlv.decode(sod, 0x77).value)["content"])
    [old] = [a["values"][0].chosen.dump() for a in signer["signed_attrs"] if a["type"].native == "signing_time"]
    return _replace(sod, old, tlv.encode(0x17, text.encode("latin-1")))


SIGNING_TIMES = {  # valid, impossible, and forms only asn1crypto reads
    "time_leap_day": "240229120000Z", "time_not_leap": "230229120000Z", "time_month_13": "241301000000Z",
    "time_hour_24": "240101240000Z", "time_1950": "500101000000Z", "time_2049": "491231235959Z",
    "time_offset": "240101120000+0700", "time_no_seconds": "2401011200Z", "time_letters": "24O101120000Z",
    "time_newline": "240101120000Z\n",
}  # fmt: skip


def _shapes() -> dict[str, bytes]:
    genuine = _genuine()
    shapes = {"genuine_ecdsa": genuine, "rsa_pkcs1v15": _rsa_sod("rsassa_pkcs1v15"), "rsa_pss": _rsa_sod("rsassa_pss")}
    for name in ("sha1", "sha224", "sha384", "sha512"):
        shapes[f"ecdsa_{name}"] = _edit(genuine, lambda s, n=name: _signer(s).__setitem__(
            "signature_algorithm", {"algorithm": f"{n}_ecdsa"}))  # fmt: skip
        shapes[f"rsa_{name}"] = _edit(genuine, lambda s, n=name: _signer(s).__setitem__(
            "signature_algorithm", {"algorithm": f"{n}_rsa"}))  # fmt: skip
        shapes[f"digest_{name}"] = _edit(genuine, lambda s, n=name: _signer(s).__setitem__(
            "digest_algorithm", {"algorithm": n}))  # fmt: skip
        shapes[f"lso_{name}"] = _edit(genuine, lambda s, n=name: _set_lso(s, hash_algorithm={"algorithm": n}))
    shapes["ecdsa_plain"] = _edit(genuine, lambda s: _signer(s).__setitem__(
        "signature_algorithm", {"algorithm": "0.4.0.127.0.7.1.1.4.1.3"}))  # fmt: skip
    shapes["rsa_encryption_oid"] = _edit(genuine, lambda s: _signer(s).__setitem__(
        "signature_algorithm", {"algorithm": "1.2.840.113549.1.1.1"}))  # fmt: skip
    shapes["key_id_sid"] = _edit(genuine, lambda s: _signer(s).__setitem__(
        "sid", cms.SignerIdentifier(name="subject_key_identifier", value=b"\x01" * 20)))  # fmt: skip
    shapes["negative_serial"] = _edit(genuine, lambda s: _signer(s)["sid"].chosen.__setitem__("serial_number", -5))
    shapes["lds_version"] = _edit(genuine, lambda s: _set_lso(
        s, version=1, lds_version_info={"lds_version": "0108", "unicode_version": "040000"}))  # fmt: skip
    shapes["no_signing_time"] = _edit(genuine, lambda s: _drop_attribute(s, "signing_time"))
    shapes["no_message_digest"] = _edit(genuine, lambda s: _drop_attribute(s, "message_digest"))
    shapes["extra_attribute"] = _edit(genuine, _add_attribute)
    for name, text in SIGNING_TIMES.items():
        shapes[name] = _with_signing_time(genuine, text)
    return shapes


def _outcome(data: bytes, *, fast: bool) -> tuple[str, Any]:
    try:
        return "sod", parse_sod(data, fast=fast)
    except ParseError as exc:
        return type(exc).__name__, str(exc)


def _fast_answers(data: bytes) -> bool:
    try:
        return sod_der.parse_fast(tlv.decode(data, 0x77).value) is not None
    except ParseError:
        return False


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    heads = [0]  # TLV starts: mutating a header reaches the structure, not just certificate bytes
    for start in range(len(data) - 1):
        if data[start] in (0x02, 0x04, 0x06, 0x13, 0x17, 0x30, 0x31, 0xA0, 0x80) and rng.random() < 0.5:
            heads.append(start)
    out = []
    for _ in range(MUTATIONS):
        raw = bytearray(data)
        at = rng.choice(heads) + rng.choice((0, 1, 1, 2)) if rng.random() < 0.7 else rng.randrange(len(raw))
        at = min(at, len(raw) - 1)
        kind = rng.randrange(4)
        if kind == 0:
            raw[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            raw[at] = rng.choice((0x00, 0x05, 0x30, 0x31, 0x80, 0x81, 0x82, 0xA0, 0xFF))
        elif kind == 2:
            del raw[at]
        else:
            raw.insert(at, rng.randrange(256))
        out.append(bytes(raw))
    return out


def test_the_oid_tables_are_asn1cryptos_names() -> None:
    assert sod_der.OID_LDS_SECURITY_OBJECT == OID_LDS_SECURITY_OBJECT
    assert set(sod_der._DIGESTS.values()) == {"sha1", "sha224", "sha256", "sha384", "sha512"}
    assert len(sod_der._SIGNATURES) == 15


def test_the_simulators_cards_take_the_fast_path() -> None:
    assert _fast_answers(_genuine())
    assert _fast_answers(_rsa_sod("rsassa_pkcs1v15"))


@pytest.mark.parametrize("name", sorted(_shapes()))
def test_every_shape_parses_as_asn1crypto_parses_it(name: str) -> None:
    data = _shapes()[name]
    assert _outcome(data, fast=True) == _outcome(data, fast=False)


def test_shapes_outside_the_usual_one_are_left_to_asn1crypto() -> None:
    shapes = _shapes()
    for name in ("rsa_pss", "rsa_encryption_oid", "extra_attribute", "no_message_digest"):
        assert not _fast_answers(shapes[name]), name
    for name in ("genuine_ecdsa", "ecdsa_plain", "key_id_sid", "negative_serial", "lds_version", "no_signing_time"):
        assert _fast_answers(shapes[name]), name


@pytest.mark.parametrize("name", ["genuine_ecdsa", "rsa_pkcs1v15", "key_id_sid", "lds_version", "ecdsa_plain"])
def test_mutated_sods_give_the_same_sod_or_the_same_error_either_way(name: str) -> None:
    rng = random.Random(f"sod-der-{name}")
    answered = 0
    for data in _mutations(_shapes()[name], rng):
        assert _outcome(data, fast=True) == _outcome(data, fast=False), data.hex()
        answered += _fast_answers(data)
    assert 0 < answered < MUTATIONS  # both paths were exercised
