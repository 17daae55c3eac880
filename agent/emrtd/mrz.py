"""Machine Readable Zone: parse and encode TD1 (3 × 30) and TD3 (2 × 44) (ICAO 9303-5 §4.2, 9303-4 §4.2).

Every check digit is verified, the composite one too (ICAO 9303-3 §4.9). Vietnamese TD1 cards put
the last 9 digits of the 12-digit ID in the document number and the whole ID in the optional data:
``IDVNM`` + 9 digits + check digit + 12-digit ID + ``<<`` + the ID's check digit.

Errors are ``MrzError`` naming the field, never its content; the dataclass hides its fields in repr.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from idstation.agent.emrtd.keys import check_digit
from idstation.agent.errors import MrzError

_ALLOWED = re.compile(r"[A-Z0-9<]*")
_VN_OPTIONAL = re.compile(r"(\d{12})<<(\d)")


@dataclass(frozen=True, slots=True)
class Mrz:
    """A parsed MRZ. Dates are YYMMDD strings as printed.

    The expiry of a lifelong card is undocumented (domain.md): it may be '<<<<<<' or a digit filler
    that is not a calendar date ('000000', '999999'); it is kept as printed, check digit verified.
    """

    format: str  # "TD1" or "TD3"
    document_code: str
    issuing_state: str
    document_number: str
    date_of_birth: str
    sex: str  # "M", "F" or "<"
    date_of_expiry: str
    nationality: str
    surname: str
    given_names: str
    optional_data_1: str
    optional_data_2: str
    id_number: str | None  # the Vietnamese 12-digit ID from the optional data, when present
    text: str  # the lines joined without separators

    def __repr__(self) -> str:
        return f"Mrz(format={self.format!r}, document_code={self.document_code!r}, ***)"

    @property
    def lines(self) -> list[str]:
        width = 30 if self.format == "TD1" else 44
        return [self.text[i : i + width] for i in range(0, len(self.text), width)]


def _normalise(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError("MRZ text must be str")
    joined = "".join(line.strip() for line in text.replace("\r", "\n").split("\n"))
    joined = joined.replace(" ", "")
    if not _ALLOWED.fullmatch(joined):
        raise MrzError("MRZ holds characters other than A-Z, 0-9 and '<'")
    return joined


def _verify(field: str, digit: str, what: str, *, optional: bool = False) -> None:
    if optional and digit == "<" and set(field) <= {"<"}:
        return
    if check_digit(field) != digit:
        raise MrzError(f"MRZ {what} check digit is wrong")


def _date_field(value: str, what: str, *, may_be_empty: bool = False) -> str:
    if may_be_empty and (value == "<<<<<<" or (len(value) == 6 and value.isdigit())):
        return value  # a date, or a lifelong card's filler: the check digit still guards it
    if not value.isdigit() or not (1 <= int(value[2:4]) <= 12) or not (1 <= int(value[4:6]) <= 31):
        raise MrzError(f"MRZ {what} is not a YYMMDD date")
    return value


def _names(field: str) -> tuple[str, str]:
    surname, _, given = field.partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def _td1_document_number(line1: str) -> tuple[str, str, str]:
    """(document number, its check digit, optional data 1), handling long numbers (§4.2.2 note j)."""
    number, digit, optional = line1[5:14], line1[14], line1[15:30]
    if digit == "<" and optional[:1] not in ("", "<"):
        extra = optional.split("<", 1)[0]
        if len(extra) < 2:
            raise MrzError("MRZ long document number is truncated")
        number, digit, optional = number + extra[:-1], extra[-1], optional[len(extra) :]
    return number.rstrip("<"), digit, optional


# the date of expiry and its check digit, by position in the joined text (9303-5 §4.2.2, 9303-4 §4.2.2)
_TD1_EXPIRY, _TD1_EXPIRY_CD = slice(38, 44), 44
_TD3_EXPIRY, _TD3_EXPIRY_CD = slice(65, 71), 71


def expiry_field(text: str) -> tuple[str, str, str, str]:
    """``(format, document code, expiry, expiry check digit)`` by position, nothing verified.

    For reports on a card whose MRZ does not verify (``card inspect``: the shape of a lifelong
    card's expiry); ``MrzError`` when the text is neither TD1 nor TD3.
    """
    joined = _normalise(text)
    if len(joined) == 90:
        return "TD1", joined[:2], joined[_TD1_EXPIRY], joined[_TD1_EXPIRY_CD]
    if len(joined) == 88:
        return "TD3", joined[:2], joined[_TD3_EXPIRY], joined[_TD3_EXPIRY_CD]
    raise MrzError(f"MRZ has {len(joined)} characters; TD1 has 90, TD3 has 88")


def _parse_td1(text: str) -> Mrz:
    line1, line2, line3 = text[:30], text[30:60], text[60:90]
    number, number_cd, optional_1 = _td1_document_number(line1)
    _verify(line1[5:14] if len(number) <= 9 else number, number_cd, "document number")
    dob = _date_field(line2[0:6], "date of birth")
    _verify(dob, line2[6], "date of birth")
    expiry = _date_field(text[_TD1_EXPIRY], "date of expiry", may_be_empty=True)
    _verify(expiry, text[_TD1_EXPIRY_CD], "date of expiry")
    _verify(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29], line2[29], "composite")
    id_number = None
    match = _VN_OPTIONAL.fullmatch(line1[15:30])
    if line1[2:5] == "VNM" and match:
        _verify(match.group(1), match.group(2), "ID number")
        id_number = match.group(1)
    surname, given = _names(line3)
    return Mrz(
        "TD1", line1[0:2].rstrip("<"), line1[2:5], number, dob, line2[7], expiry, line2[15:18],
        surname, given, optional_1.rstrip("<"), line2[18:29].rstrip("<"), id_number, text,
    )  # fmt: skip


def _parse_td3(text: str) -> Mrz:
    line1, line2 = text[:44], text[44:88]
    _verify(line2[0:9], line2[9], "document number")
    dob = _date_field(line2[13:19], "date of birth")
    _verify(dob, line2[19], "date of birth")
    expiry = _date_field(text[_TD3_EXPIRY], "date of expiry", may_be_empty=True)
    _verify(expiry, text[_TD3_EXPIRY_CD], "date of expiry")
    _verify(line2[28:42], line2[42], "personal number", optional=True)
    _verify(line2[0:10] + line2[13:20] + line2[21:43], line2[43], "composite")
    surname, given = _names(line1[5:44])
    return Mrz(
        "TD3", line1[0:2].rstrip("<"), line1[2:5], line2[0:9].rstrip("<"), dob, line2[20], expiry, line2[10:13],
        surname, given, line2[28:42].rstrip("<"), "", None, text,
    )  # fmt: skip


def parse_mrz(text: str) -> Mrz:
    """Parse a TD1 or TD3 MRZ, with or without line breaks; every check digit verified."""
    joined = _normalise(text)
    if len(joined) == 90:
        return _parse_td1(joined)
    if len(joined) == 88:
        return _parse_td3(joined)
    raise MrzError(f"MRZ has {len(joined)} characters; TD1 has 90, TD3 has 88")


def transliterate(text: str) -> str:
    """Vietnamese text → MRZ characters: no diacritics, Đ → D, upper case, spaces → '<'."""
    stripped = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(ch for ch in stripped if not unicodedata.combining(ch)).upper()
    return re.sub(r"[^A-Z0-9]+", "<", plain).strip("<")


def mrz_name(full_name: str) -> str:
    """The TD1 name line for a Vietnamese full name: family name first (``NGUYEN<<VAN<AN``)."""
    words = transliterate(full_name).split("<")
    return words[0] + "<<" + "<".join(words[1:])


def _field(value: str, width: int, what: str) -> str:
    if len(value) > width or not _ALLOWED.fullmatch(value):
        raise MrzError(f"MRZ {what} does not fit its field")
    return value + "<" * (width - len(value))


def encode_td1(
    *,
    document_number: str,
    date_of_birth: str,
    sex: str,
    date_of_expiry: str,
    name: str,
    id_number: str | None = None,
    issuing_state: str = "VNM",
    nationality: str = "VNM",
    document_code: str = "ID",
    optional_data_2: str = "",
) -> str:
    """A TD1 MRZ (90 characters, no line breaks). ``name`` is the MRZ name field (see ``mrz_name``)."""
    number = _field(document_number, 9, "document number")
    optional_1 = _field(id_number + "<<" + check_digit(id_number) if id_number else "", 15, "optional data")
    line1 = _field(document_code, 2, "document code") + _field(issuing_state, 3, "state") + number
    line1 += check_digit(number) + optional_1
    dob, expiry = _field(date_of_birth, 6, "date of birth"), _field(date_of_expiry, 6, "date of expiry")
    line2 = dob + check_digit(dob) + _field(sex, 1, "sex") + expiry + check_digit(expiry)
    line2 += _field(nationality, 3, "nationality") + _field(optional_data_2, 11, "optional data")
    line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    return line1 + line2 + _field(name[:30], 30, "name")
