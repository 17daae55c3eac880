"""Status words (ISO/IEC 7816-4 §5.6, ICAO 9303-11) and their mapping to domain errors."""

from __future__ import annotations

import enum

from idstation.agent.errors import AccessDenied, ApduError, CardError, SecureMessagingError


class SW(enum.IntEnum):
    OK = 0x9000
    END_OF_FILE = 0x6282  # fewer bytes than Le available (end of file reached)
    VERIFICATION_FAILED = 0x6300  # authentication failed (BAC / PACE token)
    WRONG_LENGTH = 0x6700
    SECURITY_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985
    SM_DATA_MISSING = 0x6987
    SM_DATA_INCORRECT = 0x6988
    WRONG_DATA = 0x6A80
    FUNC_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6A86
    WRONG_PARAMETERS = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


def is_wrong_le(sw: int) -> bool:
    """6Cxx: wrong Le; xx is the exact number of bytes available (00 = 256)."""
    return sw & 0xFF00 == 0x6C00


def exact_le(sw: int) -> int:
    """Ne the chip asked for with 6Cxx."""
    return (sw & 0xFF) or 256


_AUTH_FAILURES = frozenset({SW.VERIFICATION_FAILED, SW.SECURITY_NOT_SATISFIED, SW.AUTH_METHOD_BLOCKED})
_SM_FAILURES = frozenset({SW.SM_DATA_MISSING, SW.SM_DATA_INCORRECT})


def error_for(sw: int, context: str = "", *, authenticating: bool = False) -> CardError:
    """The domain error for an unexpected status word.

    6987/6988 → ``SecureMessagingError``; while ``authenticating`` (BAC, PACE), 6300/6982/6983 →
    ``AccessDenied``; everything else → ``ApduError(sw)`` (which keeps ``sw`` for the caller).
    """
    where = f" during {context}" if context else ""
    if sw in _SM_FAILURES:
        return SecureMessagingError(f"chip reported a secure messaging error {sw:04X}{where}")
    if authenticating and (sw in _AUTH_FAILURES or sw & 0xFFF0 == 0x63C0):
        return AccessDenied(f"chip refused the key ({sw:04X}){where}")
    return ApduError(sw, context)


def check(sw: int, context: str = "", *, authenticating: bool = False) -> None:
    """Raise ``error_for(sw)`` unless ``sw`` is 9000."""
    if sw != SW.OK:
        raise error_for(sw, context, authenticating=authenticating)
