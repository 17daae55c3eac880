"""The centre's chip check: a stage of the processor's check step (issue 13).

With ``central listen --csca DIR`` the centre holds its own CSCA trust store (loaded as
``read-card --csca`` loads one: certificates and master lists) and, for every identity event,
re-runs the pure eMRTD core's :func:`~idstation.agent.emrtd.recheck.recheck_identity`: passive
authentication of the forwarded EF.SOD and data groups, the stated citizen against DG13/DG1, and
the chip's Active Authentication signature over the challenge derived from the event id
(presence). The verdict goes beside the box's own, as ``centre_verification`` in the stored
header and in the JSON line; data that does not hold up is an :class:`EventRejected` with reason
``passive_auth_failed`` or ``chip_data_mismatch``.

Only the pure eMRTD core is imported (no reader, no session, no simulator: .importlinter).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from idstation.agent.emrtd.recheck import ChipRecheckFailed, SignerCache, recheck_identity
from idstation.agent.emrtd.trust import TrustStore
from idstation.mqtt.errors import EventRejected

log = structlog.get_logger(__name__)

__all__ = ["CENTRE_KEY", "ChipCheck", "load_csca"]

SIGNER_CACHE = 256  # DSCs: a state has a few per year; 256 covers every one in use with room
CENTRE_KEY = "centre_verification"  # a key no box header can carry (the header schema forbids extras)


def load_csca(csca_dir: str | Path) -> TrustStore:
    """The centre's CSCA trust store from a directory (ConfigError when it is missing or unreadable)."""
    return TrustStore.from_dir(csca_dir)


# a rejection's reason as the verdict of the check that failed (metrics)
_FAILED = {"passive_auth_failed": ("passive", "failed"), "chip_data_mismatch": ("data_match", "mismatch")}


class ChipCheck:
    """Re-verifies identity events against ``trust``: ``check(event_id, private) -> verdict``.

    ``on_verdict(check, verdict)`` (metrics: ``ListenerMetrics.on_chip_verdict``) hears each
    check's outcome: ``passive`` (verified, unknown_csca, signer_expired, unverified, failed),
    ``data_match`` (match, mismatch, not_checked), ``presence`` (proven, not_proven, not_checked).
    ``now`` (a clock) is injected by tests.

    Many cards share one Document Signer certificate: its parse, key and chain to the CSCA are kept
    in a bounded :class:`SignerCache` (``signer_cache`` DSCs, least recently used out; none over
    16 KB is kept: a few MB at most) shared, under a lock, by every thread that calls the check.
    A cached DSC gives the verdict an uncached one gives (the clock is compared on every event).
    ``signer_cache=0`` turns the cache off.
    """

    def __init__(
        self,
        trust: TrustStore,
        *,
        on_verdict: Callable[[str, str], None] | None = None,
        now: Callable[[], datetime | None] | None = None,
        signer_cache: int = SIGNER_CACHE,
    ) -> None:
        self.trust = trust
        self.signers = SignerCache(trust, signer_cache, lock=threading.Lock()) if signer_cache > 0 else None
        self._on_verdict = on_verdict or (lambda _check, _verdict: None)
        self._now = now or (lambda: None)

    def __call__(self, event_id: str, private: Mapping[str, Any]) -> dict[str, Any]:
        """The centre's verdict for one opened identity part, or :class:`EventRejected`."""
        try:
            found = recheck_identity(private, event_id, self.trust, now=self._now(), signers=self.signers)
        except ChipRecheckFailed as exc:
            log.warning("central_chip_rejected", event_id=event_id, reason=exc.reason, detail=str(exc))
            self._on_verdict(*_FAILED.get(exc.reason, ("chip", exc.reason)))
            raise EventRejected(exc.reason, str(exc)) from None
        if found["presence"] == "not_proven":  # a signature for another challenge is a replay; none: an old box
            signed = bool(private.get("aa_signature"))
            (log.warning if signed else log.info)("central_chip_presence_not_proven", event_id=event_id, signed=signed)
        self._on_verdict("passive", found["passive"])
        self._on_verdict("data_match", "match" if found["data_match"] else "not_checked")
        self._on_verdict("presence", found["presence"])
        return found
