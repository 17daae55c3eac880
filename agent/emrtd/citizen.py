"""The citizen object of ``read-card --json`` and of identity events, built from DG13 (and DG1).

Exactly these keys, in this order: id_number, full_name, date_of_birth, gender, nationality,
ethnicity, religion, hometown, permanent_address, identifying_marks, issue_date, expiry_date,
father_name, mother_name, spouse_name, old_id_number. Dates become ISO 8601 ("1990-01-31"; a
year-only or month-year date, as old records have, becomes "1950" or "1950-03"); expiry_date is
null on a lifelong card (DG13 field 12 holds text instead of a date); gender is as the card writes
it ("Nam"/"Nữ"); absent or empty fields are null; every text is NFC-normalised.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from idstation.agent.emrtd.lds.dg1 import Dg1, parse_dg1
from idstation.agent.emrtd.lds.dg13 import Dg13, parse_dg13

CITIZEN_KEYS = (
    "id_number", "full_name", "date_of_birth", "gender", "nationality", "ethnicity", "religion", "hometown",
    "permanent_address", "identifying_marks", "issue_date", "expiry_date", "father_name", "mother_name",
    "spouse_name", "old_id_number",
)  # fmt: skip
_TEXT_FIELDS = {
    "id_number": 1, "full_name": 2, "gender": 4, "nationality": 5, "ethnicity": 6, "religion": 7, "hometown": 8,
    "permanent_address": 9, "identifying_marks": 10, "spouse_name": 14, "old_id_number": 15,
}  # fmt: skip
_DATE = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})|(\d{2})(\d{2})(\d{4})|(\d{4})-(\d{2})-(\d{2})")


def _nfc(text: str | None) -> str | None:
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text).strip()
    return text or None


def iso_date(text: str | None) -> str | None:
    """dd/mm/yyyy (or ddmmyyyy, dd-mm-yyyy, yyyy-mm-dd) → yyyy-mm-dd; 00 day/month → reduced precision.

    Returns None when ``text`` is not a date (e.g. the lifelong wording in field 12).
    """
    if not text:
        return None
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    groups = match.groups()
    if groups[0] is not None:
        day, month, year = int(groups[0]), int(groups[1]), groups[2]
    elif groups[3] is not None:
        day, month, year = int(groups[3]), int(groups[4]), groups[5]
    else:
        year, month, day = groups[6], int(groups[7]), int(groups[8])
    if month > 12 or day > 31:
        return None
    if month == 0:
        return year
    if day == 0:
        return f"{year}-{month:02d}"
    return f"{year}-{month:02d}-{day:02d}"


def citizen_json(dg13: bytes | Dg13, dg1: bytes | Dg1 | None = None) -> dict[str, Any]:
    """The citizen object from DG13 (parsed or raw); DG1 fills the ID number if DG13 lacks it."""
    parsed = dg13 if isinstance(dg13, Dg13) else parse_dg13(dg13)
    out: dict[str, Any] = dict.fromkeys(CITIZEN_KEYS)
    for key, number in _TEXT_FIELDS.items():
        out[key] = _nfc(parsed.text(number))
    out["date_of_birth"] = iso_date(_nfc(parsed.text(3)))
    out["issue_date"] = iso_date(_nfc(parsed.text(11)))
    out["expiry_date"] = iso_date(_nfc(parsed.text(12)))
    parents = parsed.parts(13)
    out["father_name"] = _nfc(parents[0]) if len(parents) > 0 else None
    out["mother_name"] = _nfc(parents[1]) if len(parents) > 1 else None
    if out["id_number"] is None and dg1 is not None:
        mrz = (dg1 if isinstance(dg1, Dg1) else parse_dg1(dg1)).mrz
        out["id_number"] = mrz.id_number
    return out
