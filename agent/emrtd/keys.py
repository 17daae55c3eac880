"""Access keys for the chip: the CAN (PACE) and the MRZ key (BAC, PACE-MRZ).

ICAO 9303-11 §4.2 (MRZ_information = document number + check digit + DOB + check digit + expiry
+ check digit) and §4.4.1 (PACE passwords). Key candidates derived from QR fields live here too.
"""

from __future__ import annotations

from dataclasses import dataclass

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


AccessKey = CanKey | MrzKey
