"""Chip access keys from what the clerk or the command line gives: the QR text, a CAN, an MRZ, or
the document fields. The one place where the QR core meets the eMRTD core (the two cores do not
import each other): the QR gives the CAN and the fields of the BAC / PACE-MRZ keys.
"""

from __future__ import annotations

from idstation.agent.emrtd.keys import CanKey, MrzKey, candidates_from_mrz, candidates_from_qr
from idstation.agent.errors import ParseError
from idstation.agent.qr.cccd import parse_cccd

__all__ = ["candidates_for", "keys_from_qr"]


def keys_from_qr(qr_text: str) -> list[CanKey | MrzKey]:
    """PACE with the CAN, then BAC / PACE-MRZ keys for the expiry dates the 2014/2023 laws allow.

    A text that is not a citizen-card QR raises ``QrError`` naming the field, never its value.
    """
    citizen = parse_cccd(qr_text)
    return list(candidates_from_qr(citizen.id_number, citizen.date_of_birth, citizen.issue_date))


def candidates_for(
    *,
    qr: str | None = None,
    can: str | None = None,
    mrz: str | None = None,
    doc_number: str | None = None,
    dob: str | None = None,
    expiry: str | None = None,
) -> list[CanKey | MrzKey]:
    """Access-key candidates, best first: with ``qr``, PACE with the CAN, then BAC keys from its fields.

    Bad input raises ``ParseError`` (``QrError``, ``MrzError``) naming the field, never its value.
    """
    keys: list[CanKey | MrzKey] = []
    if qr is not None:
        keys.extend(keys_from_qr(qr))
    if can is not None:
        if not (can.isascii() and can.isdigit() and len(can) == 6):
            raise ParseError("the CAN must be 6 digits")
        keys.append(CanKey(can))
    if mrz is not None:
        keys.extend(candidates_from_mrz(mrz))
    if doc_number is not None or dob is not None or expiry is not None:
        keys.append(_mrz_key(doc_number, dob, expiry))
    if not keys:
        raise ParseError("no access key given (QR text, CAN, MRZ, or document number with dates)")
    return _unique(keys)


def _mrz_key(doc_number: str | None, dob: str | None, expiry: str | None) -> MrzKey:
    if not doc_number or not dob or not expiry:
        raise ParseError("an MRZ key needs the document number, date of birth and date of expiry")
    doc = doc_number.strip().upper()
    if not (1 <= len(doc) <= 9 and doc.isascii() and doc.isalnum()):
        raise ParseError("the document number must be 1-9 letters or digits")
    for what, value in (("date of birth", dob), ("date of expiry", expiry)):
        if not (len(value) == 6 and value.isascii() and value.isdigit()):
            raise ParseError(f"the {what} must be YYMMDD")
    return MrzKey(doc, dob, expiry)


def _unique(keys: list[CanKey | MrzKey]) -> list[CanKey | MrzKey]:
    seen: set[CanKey | MrzKey] = set()
    out: list[CanKey | MrzKey] = []
    for key in keys:
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out
