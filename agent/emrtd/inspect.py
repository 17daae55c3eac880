"""A card's capabilities WITHOUT personal data, for field technicians to send back.

What it reports (``inspect_card``): the ATR; EF.CardAccess SecurityInfos (protocol OIDs, versions,
PACE parameter ids); the access method that worked; EF.COM's versions and data-group list; per
data group whether it is present, readable and its size; EF.SOD's hash/signature algorithms and
the document signer's issuer (the issuing authority, not the citizen), serial and validity; DG13
field numbers and value lengths (never the values); the MRZ format and the *shape* of its expiry
field (digits "999999", filler "<<<<<<", or a mix); AA and CA support and results; and whether
the chip kept extended-length APDUs. These answer the open field questions (lifelong MRZ expiry,
the issuing CSCA, DG13 field 16, PACE-CAN vs BAC) without a single personal value.

Everything else that is read (names, numbers, dates, addresses, the face) is dropped here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from idstation.agent.emrtd.fids import FID_COM, FID_SOD
from idstation.agent.emrtd.keys import CanKey, MrzKey
from idstation.agent.errors import ApduError, IdstationError, ParseError
from idstation.hal.logs import get_logger
from idstation.hal.ports import CardConnection

log = get_logger(__name__)

_ALL_GROUPS = tuple(range(1, 17))


def shape(value: str) -> str:
    """The shape of an MRZ field: digits → '9', letters → 'A', filler kept ('<')."""
    return re.sub(r"[A-Z]", "A", re.sub(r"[0-9]", "9", value))


def inspect_card(
    conn: CardConnection, candidates: Sequence[CanKey | MrzKey], *, rng: Callable[[int], bytes] = os.urandom
) -> dict[str, Any]:
    """Open the chip with ``candidates`` and describe it; see the module docstring."""
    from idstation.agent.emrtd.session import ChipSession

    session = ChipSession(conn.transmit, extended_length=conn.extended_length, max_response=conn.max_response, rng=rng)
    access = session.open(list(candidates))
    report: dict[str, Any] = {
        "atr": bytes(conn.atr).hex().upper(),
        "access": access,
        "card_access": _security_infos(session.card_access),
    }
    com = _read(session, FID_COM)
    listed = _com(com, report)
    groups: dict[int, bytes] = {}
    report["data_groups"] = {}
    for number in listed or _ALL_GROUPS:
        report["data_groups"][f"DG{number}"] = _probe(session, number, groups)
    report["sod"] = _sod(_read(session, FID_SOD))
    report["dg13"] = _dg13(groups.get(13))
    report["mrz"] = _mrz_shape(groups.get(1))
    report["dg14"] = _security_infos(groups.get(14))
    report["chip_authentication"] = _chip_auth(session, groups.get(14))
    report["active_authentication"] = _active_auth(session, groups.get(15), rng)
    report["extended_length"] = {
        "reader": bool(conn.extended_length),
        "chip": session.extended_length,
    }
    report["apdus"] = int(session.apdus)
    log.info("card_inspected", access=access, apdus=session.apdus)
    return report


def _read(session: Any, fid: int) -> bytes | None:
    try:
        return bytes(session.read_file(fid))
    except ApduError:
        return None


def _probe(session: Any, number: int, groups: dict[int, bytes]) -> dict[str, Any]:
    try:
        data = bytes(session.read_file(0x0100 + number))
    except ApduError as exc:
        present = exc.sw != 0x6A82
        return {"present": present, "readable": False, "sw": f"{exc.sw:04X}"}
    groups[number] = data
    return {"present": True, "readable": True, "size": len(data)}


def _com(com: bytes | None, report: dict[str, Any]) -> tuple[int, ...] | None:
    if com is None:
        report["com"] = None
        return None
    from idstation.agent.emrtd.lds.com import parse_com

    try:
        parsed = parse_com(com)
    except ParseError:
        report["com"] = {"error": "malformed"}
        return None
    report["com"] = {
        "lds_version": parsed.lds_version,
        "unicode_version": parsed.unicode_version,
        "tags": [f"{t:02X}" for t in parsed.tags],
        "data_groups": [f"DG{n}" for n in parsed.data_groups],
    }
    return tuple(parsed.data_groups)


def _security_infos(data: bytes | None) -> list[dict[str, Any]] | None:
    if data is None:
        return None
    from idstation.agent.emrtd.lds.security_infos import parse_security_infos

    try:
        infos = parse_security_infos(data)
    except ParseError:
        return [{"error": "malformed"}]
    out: list[dict[str, Any]] = []
    for info in infos.infos:
        entry: dict[str, Any] = {"type": type(info).__name__, "protocol": info.protocol}
        for name in ("version", "parameter_id", "key_id", "signature_algorithm"):
            value = getattr(info, name, None)
            if value is not None:
                entry[name] = value
        if hasattr(info, "mapping"):
            entry["mapping"] = info.mapping
        out.append(entry)
    return out


def _sod(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    from idstation.agent.emrtd.lds.sod import parse_sod

    try:
        sod = parse_sod(data)
    except ParseError:
        return {"error": "malformed", "size": len(data)}
    out: dict[str, Any] = {
        "size": len(data),
        "hash_algorithm": sod.hash_algorithm,
        "digest_algorithm": sod.digest_algorithm,
        "signature_algorithm": sod.signature_algorithm,
        "signature_hash": sod.signature_hash,
        "lds_version": sod.lds_version,
        "hashed_groups": [f"DG{n}" for n in sorted(sod.dg_hashes)],
        "certificates": len(sod.certificates),
    }
    if sod.certificates:
        out["document_signer"] = _certificate(sod.certificates[0])
    return out


def _certificate(der: bytes) -> dict[str, Any]:
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {"error": "malformed"}
    return {
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "X"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "key": type(cert.public_key()).__name__.lstrip("_"),
    }


def _dg13(data: bytes | None) -> dict[str, Any] | None:
    """Field numbers with the length of each value (nested values: a list of lengths)."""
    if data is None:
        return None
    from idstation.agent.emrtd.lds.dg13 import parse_dg13

    try:
        parsed = parse_dg13(data)
    except ParseError:
        return {"error": "malformed", "size": len(data)}
    fields: dict[str, Any] = {}
    for number in sorted(set(parsed.fields) | set(parsed.raw)):
        value = parsed.fields.get(number)
        if isinstance(value, str):
            fields[str(number)] = {"kind": "text", "length": len(value)}
        elif isinstance(value, tuple):
            fields[str(number)] = {"kind": "nested", "lengths": [len(part) for part in value]}
        else:
            fields[str(number)] = {"kind": "raw", "length": len(parsed.raw.get(number, b""))}
    return {"version": parsed.version, "fields": fields}


def _mrz_shape(dg1: bytes | None) -> dict[str, Any] | None:
    """MRZ format and the shape of the expiry field, even when its check digits fail."""
    if dg1 is None:
        return None
    from idstation.agent.emrtd.lds.dg1 import dg1_mrz_text
    from idstation.agent.emrtd.mrz import expiry_field

    try:
        text = dg1_mrz_text(dg1)
    except IdstationError:
        return {"error": "malformed"}
    try:
        fmt, code, expiry, cd = expiry_field(text)
    except IdstationError:
        return {"format": f"unknown ({len(text.replace(chr(10), '').replace(chr(13), ''))} characters)"}
    kind = "digits" if expiry.isdigit() else "filler" if set(expiry) == {"<"} else "mixed"
    return {"format": fmt, "document_code": code, "expiry_shape": shape(expiry), "expiry_kind": kind,
            "expiry_check_digit_shape": shape(cd)}  # fmt: skip


def _chip_auth(session: Any, dg14: bytes | None) -> dict[str, Any]:
    if dg14 is None:
        return {"result": "not_supported", "reason": "no DG14"}
    try:
        return dict(session.chip_authenticate(dg14).to_json())
    except IdstationError as exc:
        return {"result": "failed", "reason": type(exc).__name__}


def _active_auth(session: Any, dg15: bytes | None, rng: Callable[[int], bytes]) -> dict[str, Any]:
    if dg15 is None:
        return {"result": "not_supported", "reason": "no DG15"}
    from idstation.agent.emrtd.active_auth import verify_active
    from idstation.agent.emrtd.lds.dg15 import parse_dg15

    try:
        key = parse_dg15(dg15)
        info: dict[str, Any] = {"key": key.kind, "key_bits": key.key_bits}
    except ParseError:
        return {"result": "failed", "reason": "DG15 is malformed"}
    challenge = rng(8)
    try:
        signature = session.internal_authenticate(challenge)
    except ApduError as exc:
        return info | {"result": "failed", "reason": f"SW {exc.sw:04X}"}
    return info | dict(verify_active(key, challenge, signature).to_json())


def render_text(report: dict[str, Any]) -> str:
    """A short human-readable version of the report (same content, no personal data)."""
    lines = [f"access: {report['access']}", f"ATR: {report['atr']}"]
    for info in report.get("card_access") or []:
        lines.append(f"card access: {info.get('type')} {info.get('protocol')} param={info.get('parameter_id')}")
    for name, entry in report.get("data_groups", {}).items():
        state = f"{entry['size']} bytes" if entry.get("readable") else f"SW {entry.get('sw')}"
        lines.append(f"{name}: {state}")
    sod = report.get("sod") or {}
    signer = sod.get("document_signer") or {}
    if signer:
        lines.append(f"document signer: {signer.get('issuer')} serial {signer.get('serial')}")
        lines.append(f"  valid {signer.get('not_before')} .. {signer.get('not_after')}")
    lines.append(f"SOD hash: {sod.get('hash_algorithm')}")
    dg13 = (report.get("dg13") or {}).get("fields", {})
    lines.append("DG13 fields: " + ", ".join(dg13))
    mrz = report.get("mrz") or {}
    lines.append(f"MRZ: {mrz.get('format')} expiry {mrz.get('expiry_shape')} ({mrz.get('expiry_kind')})")
    lines.append(f"chip authentication: {report['chip_authentication'].get('result')}")
    lines.append(f"active authentication: {report['active_authentication'].get('result')}")
    ext = report["extended_length"]
    lines.append(f"extended length: reader {ext['reader']}, chip {ext['chip']}")
    return "\n".join(lines)
