"""Access keys for the chip: the CAN (PACE) and the MRZ key (BAC, PACE-MRZ).

ICAO 9303-11 §4.2 (MRZ_information = document number + check digit + DOB + check digit + expiry
+ check digit) and §4.4.1 (PACE passwords). Key candidates derived from QR fields live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

_WEIGHTS = (7, 3, 1)


def check_digit(field: str) -> str:
    """ICAO 9303-3 §4.9 check digit of an MRZ field ('<' counts 0, A=10 … Z=35)."""
    total = 0
    for i, ch in enumerate(field):
        if ch.isdigit():
            value = ord(ch) - 48
        elif "A" <= ch <= "Z":
            value = ord(ch) - 55
        elif ch == "<":
            value = 0
        else:
            raise ValueError(f"character {ch!r} is not allowed in an MRZ field")
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


@dataclass(frozen=True, slots=True)
class CanKey:
    """Card Access Number: for CCCD chips, the last 6 digits of the 12-digit ID number."""

    can: str

    def __repr__(self) -> str:  # never print the key material
        return "CanKey(***)"

    @property
    def password(self) -> bytes:
        return self.can.encode("ascii")


@dataclass(frozen=True, slots=True)
class MrzKey:
    """The BAC / PACE-MRZ key: document number, date of birth and expiry (YYMMDD)."""

    doc_number: str
    date_of_birth: str
    date_of_expiry: str

    def __repr__(self) -> str:
        return "MrzKey(***)"

    def mrz_information(self) -> str:
        """ICAO 9303-11 §9.7.2: doc number (padded to 9 with '<') ‖ cd ‖ DOB ‖ cd ‖ expiry ‖ cd."""
        doc = self.doc_number.upper()
        if len(doc) < 9:
            doc = doc + "<" * (9 - len(doc))
        return (
            doc
            + check_digit(doc)
            + self.date_of_birth
            + check_digit(self.date_of_birth)
            + self.date_of_expiry
            + check_digit(self.date_of_expiry)
        )


# --- Expiry rules and key candidates from the QR code ---------------------------------------
#
# The QR code carries the ID number, the date of birth and the issue date, not the expiry. The
# expiry follows from the law in force on the issue date (domain.md "Expiry from DOB and issue
# date"):
# - 2014 Law on Citizen Identification (CCCD, issued before 2024-07-01): the card is renewed at
#   ages 25, 40 and 60; a card issued within 2 years before such an age stays valid until the
#   next one; none after 60, so a card issued at 58 or later never expires.
# - 2023 Identity Law (căn cước, issued from 2024-07-01): ages 14, 25, 40, 60, the same 2-year
#   rule, lifelong from 58.
# The expiry falls on the birthday (29 February → 28 February in common years). "Within 2 years"
# counts inclusively: issued exactly 2 years before the milestone birthday → valid to the next.

LAW_2023_FROM = date(2024, 7, 1)
MILESTONES_2014 = (25, 40, 60)
MILESTONES_2023 = (14, 25, 40, 60)
BOUNDARY_DAYS = 31  # issue dates this close to a rule boundary also try the neighbouring expiry
LIFELONG_FILLERS = ("991231", "<<<<<<", "000000")
"""What a lifelong card's MRZ expiry field may hold (undocumented; field notes wanted). Bounded:
the ICAO filler for "no expiry" ('<'), the common "unlimited" date 31/12/99, zeros; plus the
100th birthday (added per citizen in ``expiry_candidates``)."""


def _birthday(date_of_birth: date, year: int) -> date:
    """The birthday in ``year``: 29 February becomes 28 February in common years."""
    try:
        return date_of_birth.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def _expiry_under(milestones: tuple[int, ...], date_of_birth: date, issue_date: date) -> date | None:
    for age in milestones:
        two_years_before = _birthday(date_of_birth, date_of_birth.year + age - 2)
        if issue_date < two_years_before:
            return _birthday(date_of_birth, date_of_birth.year + age)
    return None


def _check_dates(date_of_birth: date, issue_date: date) -> None:
    if not isinstance(date_of_birth, date) or not isinstance(issue_date, date):
        raise TypeError("date_of_birth and issue_date must be datetime.date")
    if issue_date < date_of_birth:
        from idstation.agent.errors import ParseError

        raise ParseError("issue date is before the date of birth")


def card_expiry(date_of_birth: date, issue_date: date) -> date | None:
    """The card's expiry date by the law in force on ``issue_date``; None for a lifelong card."""
    _check_dates(date_of_birth, issue_date)
    milestones = MILESTONES_2023 if issue_date >= LAW_2023_FROM else MILESTONES_2014
    return _expiry_under(milestones, date_of_birth, issue_date)


def _yymmdd(value: date) -> str:
    return value.strftime("%y%m%d")


def expiry_candidates(date_of_birth: date, issue_date: date) -> list[str]:
    """MRZ expiry fields (YYMMDD) to try, most likely first; at most ~10, never unbounded.

    Near a boundary (the law change, a milestone's 2-year threshold, within ``BOUNDARY_DAYS``)
    both neighbouring expiries are included; 29 February birthdays also try 1 March; a lifelong
    result adds the ``LIFELONG_FILLERS`` and the 100th birthday.
    """
    _check_dates(date_of_birth, issue_date)
    shift = timedelta(days=BOUNDARY_DAYS)
    results: list[date | None] = [card_expiry(date_of_birth, issue_date)]
    for probe in (issue_date - shift, issue_date + shift):  # crossing the law change or a threshold
        results.append(card_expiry(date_of_birth, max(probe, date_of_birth)))
    out: list[str] = []
    for expiry in results:
        if expiry is None:
            fillers = [*LIFELONG_FILLERS, _yymmdd(_birthday(date_of_birth, date_of_birth.year + 100))]
            out.extend(fillers)
            continue
        out.append(_yymmdd(expiry))
        if (date_of_birth.month, date_of_birth.day) == (2, 29) and expiry.day == 28:
            out.append(_yymmdd(expiry + timedelta(days=1)))
    return list(dict.fromkeys(out))


def _validate_id_number(id_number: str) -> None:
    if not isinstance(id_number, str):
        raise TypeError("id_number must be str")
    if len(id_number) != 12 or not id_number.isascii() or not id_number.isdigit():
        from idstation.agent.errors import ParseError

        raise ParseError("ID number must be exactly 12 ASCII digits")


def candidates_from_qr(id_number: str, date_of_birth: date, issue_date: date) -> list[CanKey | MrzKey]:
    """Access-key candidates from the QR fields: the CAN first, then one MRZ key per expiry."""
    _validate_id_number(id_number)
    dob = _yymmdd(date_of_birth)
    doc = id_number[-9:]
    keys: list[CanKey | MrzKey] = [CanKey(id_number[-6:])]
    keys.extend(MrzKey(doc, dob, expiry) for expiry in expiry_candidates(date_of_birth, issue_date))
    return keys


def candidates_from_mrz(text: str) -> list[MrzKey]:
    """The MRZ key from a typed or scanned MRZ (TD1 or TD3), check digits verified."""
    from idstation.agent.emrtd.mrz import parse_mrz

    mrz = parse_mrz(text)
    return [MrzKey(mrz.document_number, mrz.date_of_birth, mrz.date_of_expiry)]
