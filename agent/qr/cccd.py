"""The citizen-card QR payload (CCCD 2021-2024 and căn cước from 1 July 2024).

The payload is pipe-separated UTF-8 text with 7 fields; some cards add more, which are kept:

    ID12 | old ID9 (may be empty) | full name | DOB ddmmyyyy | Nam/Nữ | permanent address | issue ddmmyyyy

The parser is a pure function. Text is kept exactly as encoded except for Unicode NFC
normalisation (decomposed Vietnamese diacritics from some encoders compose to the same string
the chip's DG13 holds). Gender is normalised to "Nam" / "Nữ". Errors are ``QrError`` and their
messages name the field that failed, never its value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from idstation.agent.errors import QrError

__all__ = ["QrCitizen", "parse_cccd"]

FIELD_COUNT = 7
_ID12 = re.compile(r"[0-9]{12}")
_OLD_ID = re.compile(r"[0-9]{9}|[0-9]{12}")
_DATE = re.compile(r"([0-9]{2})/?([0-9]{2})/?([0-9]{4})")
_GENDERS = {"nam": "Nam", "male": "Nam", "m": "Nam", "nữ": "Nữ", "nu": "Nữ", "female": "Nữ", "f": "Nữ"}


@dataclass(frozen=True, slots=True)
class QrCitizen:
    """The citizen fields of a card's QR code. ``repr`` hides them (personal data)."""

    id_number: str
    old_id_number: str | None
    full_name: str
    date_of_birth: dt.date
    gender: str
    permanent_address: str
    issue_date: dt.date
    extras: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"QrCitizen(<redacted>, extras={len(self.extras)})"

    __str__ = __repr__

    @property
    def can(self) -> str:
        """The PACE Card Access Number: the last 6 digits of the 12-digit ID number."""
        return self.id_number[-6:]

    def to_json(self) -> dict[str, str | None]:
        """The ``citizen`` object of ``idstation decode-qr --json`` (dates ISO 8601)."""
        return {
            "id_number": self.id_number,
            "old_id_number": self.old_id_number,
            "full_name": self.full_name,
            "date_of_birth": self.date_of_birth.isoformat(),
            "gender": self.gender,
            "permanent_address": self.permanent_address,
            "issue_date": self.issue_date.isoformat(),
        }


def parse_cccd(text: str | bytes) -> QrCitizen:
    """Parse a CCCD / căn cước QR payload into a ``QrCitizen``.

    Raises ``QrError`` for other QR codes, garbage, and truncated payloads. A ``bytes`` payload
    must be UTF-8. Surrounding line breaks (added by some scanners) are ignored.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise QrError("QR payload is not UTF-8 text") from None
    if not isinstance(text, str):
        raise TypeError(f"parse_cccd takes str or bytes, not {type(text).__name__}")
    text = unicodedata.normalize("NFC", text.strip("\r\n\x00"))
    fields = text.split("|")
    if not _ID12.fullmatch(fields[0]):
        raise QrError("QR payload is not a citizen card: field 1 is not a 12-digit ID number")
    if len(fields) < FIELD_COUNT:
        raise QrError(f"citizen card QR payload is truncated: {len(fields)} of {FIELD_COUNT} fields")
    id_number, old_id, full_name, dob, gender, address, issued = fields[:FIELD_COUNT]
    if old_id and not _OLD_ID.fullmatch(old_id):
        raise QrError("citizen card QR field 2 (old ID number) is not 9 or 12 digits")
    if not full_name.strip():
        raise QrError("citizen card QR field 3 (full name) is empty")
    date_of_birth = _parse_date(dob, "field 4 (date of birth)")
    issue_date = _parse_date(issued, "field 7 (issue date)")
    if issue_date < date_of_birth:
        raise QrError("citizen card QR issue date is before the date of birth")
    return QrCitizen(
        id_number=id_number,
        old_id_number=old_id or None,
        full_name=full_name,
        date_of_birth=date_of_birth,
        gender=_normalise_gender(gender),
        permanent_address=address,
        issue_date=issue_date,
        extras=tuple(fields[FIELD_COUNT:]),
    )


def _parse_date(value: str, what: str) -> dt.date:
    match = _DATE.fullmatch(value.strip())
    if not match:
        raise QrError(f"citizen card QR {what} is not a ddmmyyyy date")
    day, month, year = (int(g) for g in match.groups())
    try:
        date = dt.date(year, month, day)
    except ValueError:
        raise QrError(f"citizen card QR {what} is not a valid date") from None
    if not 1900 <= year <= 2100:
        raise QrError(f"citizen card QR {what} is out of range")
    return date


def _normalise_gender(value: str) -> str:
    key = unicodedata.normalize("NFC", value.strip()).casefold()
    gender = _GENDERS.get(key)
    if gender is None:
        raise QrError("citizen card QR field 5 (gender) is neither Nam nor Nữ")
    return gender
