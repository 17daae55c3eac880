"""The verdict of one chip read, typed: what the box tells the clerk and the centre.

Each check of a read (passive, active and chip authentication, parsing the data) ends in a
``CheckResult`` from a closed set; ``verdict_of`` derives the read's ``Verdict`` from those values
only. Nothing the card supplies (certificate subjects, reasons, data) takes part: a document signer
named ``CN=unknown_csca`` cannot turn a failed verification into an unknown-CSCA verdict.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["CheckResult", "Verdict", "verdict_of"]


class CheckResult(enum.StrEnum):
    """The ``result`` of one check in ``read-card --json``'s ``verification`` object."""

    OK = "ok"
    FAILED = "failed"
    UNKNOWN_CSCA = "unknown_csca"  # passive: sound, but no configured CSCA issued the signer
    SIGNER_EXPIRED = "signer_expired"  # passive: the document signer is outside its validity
    NOT_CHECKED = "not_checked"  # passive: nothing to check against
    NOT_SUPPORTED = "not_supported"  # active / chip: the card does not offer it
    NOT_RUN = "not_run"  # the read policy skipped it


class Verdict(enum.StrEnum):
    VERIFIED = "verified"  # passive authentication ok and no other check failed
    UNKNOWN_CSCA = "unknown_csca"  # everything sound, but the issuer is not among the configured CSCAs
    SIGNER_EXPIRED = "signer_expired"  # sound and chained, but the signer certificate has expired
    UNVERIFIED = "unverified"  # nothing could be verified (no passive authentication ran)
    VERIFICATION_FAILED = "verification_failed"  # a check failed: the data may not be the issuer's


_PASSIVE = {
    CheckResult.OK: Verdict.VERIFIED,
    CheckResult.UNKNOWN_CSCA: Verdict.UNKNOWN_CSCA,
    CheckResult.SIGNER_EXPIRED: Verdict.SIGNER_EXPIRED,
    CheckResult.NOT_CHECKED: Verdict.UNVERIFIED,
    CheckResult.NOT_RUN: Verdict.UNVERIFIED,
}


def verdict_of(results: Mapping[str, CheckResult]) -> Verdict:
    """The read's verdict from each check's result (``"passive"``, ``"active"``, ``"chip"``, ``"data"``)."""
    if any(result is CheckResult.FAILED for result in results.values()):
        return Verdict.VERIFICATION_FAILED
    return _PASSIVE.get(results.get("passive", CheckResult.NOT_RUN), Verdict.VERIFICATION_FAILED)
