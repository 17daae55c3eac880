"""The centre re-verifies the chip: a box's verdict is only a claim (issue 13).

A box whose signing key is stolen could sign any citizen. The centre therefore re-runs Passive
Authentication (ICAO 9303-11 §5.1) on the EF.SOD and data groups an identity event carries,
against its own CSCA trust store; checks that the citizen fields the event states are the ones
DG13 (and DG1 for the MRZ-derived fields) hold (:func:`citizen_json` of the same groups); and
checks the chip's Active Authentication signature (9303-11 §6.1) against DG15 over the challenge
derived from the event id (:func:`challenge_for`): the box made the event id before it read the
chip, so only a card present for THIS event can have signed it. Data read earlier and replayed
under a new event id (even signed by a stolen box key) cannot prove presence.

The verdict (:func:`recheck_identity`) is a small dict:

- ``passive``: ``verified`` | ``unknown_csca`` | ``signer_expired`` | ``unverified`` (no EF.SOD:
  a QR-only read, or a box that sent none);
- ``data_match``: ``True`` (the stated citizen is DG13/DG1's) or ``None`` (not checked);
- ``presence``: ``proven`` | ``not_proven`` (DG15 is there, but no signature or one that does not
  verify over this event's challenge) | ``not_checked`` (no chip data, no DG15, or a DG15 the
  centre's CSCAs do not vouch for).

Data that does not hold up raises :class:`ChipRecheckFailed` with ``reason``
``passive_auth_failed`` (the groups do not verify against EF.SOD) or ``chip_data_mismatch`` (they
verify, but the stated citizen is not theirs). Pure: no I/O, no clock but ``now``; messages name
fields, never their values.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from idstation.agent.emrtd.active_auth import challenge_for, verify_active
from idstation.agent.emrtd.citizen import citizen_json
from idstation.agent.emrtd.passive_auth import verify_passive
from idstation.agent.emrtd.signer import SignerCache
from idstation.agent.emrtd.trust import TrustStore
from idstation.agent.errors import ParseError, VerificationError

__all__ = ["DATA_MISMATCH", "PASSIVE_FAILED", "ChipRecheckFailed", "SignerCache", "recheck_identity"]

PASSIVE_FAILED = "passive_auth_failed"
DATA_MISMATCH = "chip_data_mismatch"
MAX_GROUPS = 16  # DG1-DG16
_PASSIVE = {"ok": "verified", "unknown_csca": "unknown_csca", "signer_expired": "signer_expired"}
# presence needs a DG15 the issuer vouches for: under an unknown CSCA anyone could have made it
_DG15_VOUCHED = {"verified", "signer_expired"}


class ChipRecheckFailed(VerificationError):
    """The chip data of an identity event does not hold up; ``reason`` is the rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ChipRecheckFailed(PASSIVE_FAILED, f"{what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ChipRecheckFailed(PASSIVE_FAILED, f"{what} is not base64") from None


def _groups(private: Mapping[str, Any]) -> dict[int, bytes]:
    raw = private.get("data_groups") or {}
    if not isinstance(raw, Mapping) or len(raw) > MAX_GROUPS:
        raise ChipRecheckFailed(PASSIVE_FAILED, "data groups are malformed")
    groups: dict[int, bytes] = {}
    for name, text in raw.items():
        number = str(name).upper().removeprefix("DG")
        if not number.isdigit() or not 1 <= int(number) <= MAX_GROUPS:
            raise ChipRecheckFailed(PASSIVE_FAILED, "data groups are malformed")
        groups[int(number)] = _b64(text, f"DG{int(number)}")
    return groups


def _expected_citizen(groups: dict[int, bytes]) -> dict[str, Any]:
    if 13 not in groups:
        raise ChipRecheckFailed(DATA_MISMATCH, "no DG13 vouches for the citizen fields")
    try:
        try:
            return dict(citizen_json(groups[13], groups.get(1)))
        except ParseError:  # DG1 unusable: DG13 alone gives the citizen (as the box does)
            return dict(citizen_json(groups[13]))
    except (ParseError, ValueError):
        raise ChipRecheckFailed(DATA_MISMATCH, "DG13 does not parse") from None


def _check_citizen(stated: Any, expected: Mapping[str, Any]) -> None:
    if not isinstance(stated, Mapping):
        raise ChipRecheckFailed(DATA_MISMATCH, "the citizen is malformed")
    differ = sorted(k for k in set(expected) | set(stated) if (expected.get(k) or None) != (stated.get(k) or None))
    if differ:  # names of fields only, never their values
        raise ChipRecheckFailed(DATA_MISMATCH, "citizen fields differ from the chip: " + ", ".join(differ)[:200])


def _presence(groups: dict[int, bytes], passive: str, signature_text: Any, event_id: str) -> str:
    if 15 not in groups or passive not in _DG15_VOUCHED:
        return "not_checked"
    if not signature_text:
        return "not_proven"
    try:
        signature = base64.b64decode(str(signature_text), validate=True)
    except (binascii.Error, ValueError):
        return "not_proven"
    verdict = verify_active(groups[15], challenge_for(event_id), signature)
    return "proven" if verdict.result == "ok" else "not_proven"


def recheck_identity(
    private: Mapping[str, Any],
    event_id: str,
    trust: TrustStore,
    *,
    now: datetime | None = None,
    signers: SignerCache | None = None,
) -> dict[str, Any]:
    """The centre's own verdict on an identity event's opened private part (see the module doc).

    ``signers`` (a :class:`SignerCache` for ``trust``) keeps Document Signer work across events."""
    sod_text = private.get("ef_sod")
    if private.get("source") != "chip" or not sod_text:
        return {"passive": "unverified", "data_match": None, "presence": "not_checked"}
    sod = _b64(sod_text, "EF.SOD")
    groups = _groups(private)
    verdict = verify_passive(sod, groups, trust, now=now, signers=signers)
    passive = _PASSIVE.get(verdict.result)
    if passive is None:
        raise ChipRecheckFailed(PASSIVE_FAILED, f"passive authentication: {verdict.reason or verdict.result}")
    _check_citizen(private.get("citizen") or {}, _expected_citizen(groups))
    return {
        "passive": passive,
        "data_match": True,
        "presence": _presence(groups, passive, private.get("aa_signature"), event_id),
    }
