"""The sans-MQTT core of the central side: verify, decrypt, record, classify.

:class:`CentralProcessor` turns ``(topic, payload)`` into an :class:`AcceptedEvent` or raises
:class:`EventRejected` (the reasons and the order of the checks: :mod:`.listener`).
:func:`event_to_json_line` is the JSON line ``idstation central listen --json`` (and
``idstation demo --json``) prints per accepted event. :mod:`.listener` re-exports all three.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import Incoming, Outcome, Store, Verdict
from idstation.mqtt.errors import EventRejected, SealError
from idstation.mqtt.events import parse_header, parse_private
from idstation.mqtt.json_text import compact_json
from idstation.mqtt.seal import ED25519_BACKEND, Verify, decode_frame, open_private, verify_frame, verify_signature
from idstation.mqtt.topics import parse_topic

log = structlog.get_logger(__name__)

__all__ = ["AcceptedEvent", "CentralProcessor", "Checked", "event_to_json_line"]

_BULKY = ("face", "data_groups", "ef_sod")
_Verified = tuple[dict[str, Any], Any, "dict[str, Any] | None", "str | None"]


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """A verified, decrypted, first-seen event. ``private`` holds personal data: never log it."""

    header: dict[str, Any]
    topic: str
    private: dict[str, Any] | None = field(default=None, repr=False)
    observation: Outcome | None = None
    received_at: float = 0.0

    @property
    def event_id(self) -> str:
        return str(self.header["event_id"])

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def cursor(self) -> int | None:
        """The store's cursor of this event (``central export --after``)."""
        return self.observation.cursor if self.observation is not None else None

    def __repr__(self) -> str:
        return f"AcceptedEvent(event_id={self.event_id!r}, kind={self.kind!r}, device_id={self.header['device_id']!r})"


def event_to_json_line(event: AcceptedEvent, *, full: bool = False) -> str:
    """One JSON line per accepted event (no trailing newline).

    Keys: ``event_id, device_id, site, counter_id, boot_id, seq, kind, created_at, clock_synced,
    key_id, received_at``; identity adds ``citizen``, ``verification``, ``source``, ``access``,
    ``qr`` and ``has_face`` (``full=True`` also adds ``face``, ``data_groups``, ``ef_sod``), and
    ``centre_verification`` when the centre re-verified the chip (``central listen --csca``);
    read_failed adds ``reason``, ``detail``; status adds ``state``, ``info``; heartbeat ``info``.
    """
    h, kind = event.header, event.kind
    line: dict[str, Any] = {
        "event_id": h.get("event_id"),
        "device_id": h.get("device_id"),
        "site": h.get("site"),
        "counter_id": h.get("counter_id"),
        "boot_id": h.get("boot_id"),
        "seq": h.get("seq"),
        "kind": h.get("kind"),
        "created_at": h.get("created_at"),
        "clock_synced": h.get("clock_synced"),
        "key_id": h.get("key_id"),
        "received_at": _iso(event.received_at) if event.received_at else None,
    }
    if kind == "identity":
        private = event.private or {}
        line["citizen"] = private.get("citizen")
        line["verification"] = private.get("verification")
        line["source"] = private.get("source")
        line["access"] = private.get("access")
        line["qr"] = private.get("qr")
        line["has_face"] = bool(private.get("face"))
        if "centre_verification" in h:  # the centre's own chip check (central listen --csca)
            line["centre_verification"] = h["centre_verification"]
        if full:
            for key in _BULKY:
                line[key] = private.get(key)
    elif kind == "read_failed":
        line["reason"], line["detail"] = h.get("reason"), h.get("detail", "")
    elif kind == "status":
        line["state"], line["info"] = h.get("state"), h.get("info", {})
    else:
        line["info"] = h.get("info", {})
    if event.observation is not None and event.observation.verdict is not Verdict.NEW:
        line["sequence"] = event.observation.verdict.value
    return compact_json(line)


def _iso(ts: float) -> str:
    second = math.floor(ts)
    cached = _LAST_SECOND[0]  # one formatting per second, not per event (a tuple: swapped whole)
    if cached[0] != second:
        cached = _LAST_SECOND[0] = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)))
    return cached[1] + f".{int(ts * 1000) % 1000:03d}Z"


_LAST_SECOND: list[tuple[int | None, str]] = [(None, "")]


@dataclass(frozen=True, slots=True)
class Checked:
    """A message that passed every check but the store's: verified, opened, ready to record."""

    topic: str
    header: dict[str, Any]
    private: dict[str, Any] | None = field(repr=False)
    incoming: Incoming


class CentralProcessor:
    """Verify → decrypt (:meth:`check`) → record (the store) → classify (:meth:`accept`). Thread-safe."""

    def __init__(
        self,
        registry: Registry,
        central_key: X25519PrivateKey,
        store: Store,
        chip_check: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
        *,
        verify: Verify | None = None,
    ) -> None:
        """``chip_check(event_id, private) -> verdict`` re-verifies an identity event's chip data
        (the CLI's ``--csca``, :class:`.chip_check.ChipCheck`: passive authentication, the citizen
        against DG1/DG13, presence by the chip's AA signature over the event's challenge) and
        raises EventRejected (``passive_auth_failed`` / ``chip_data_mismatch``) for data that does
        not hold; its verdict is kept beside the box's as the stored header's (and the JSON
        line's) ``centre_verification``. ``verify`` is the Ed25519 verifier (default
        :data:`~idstation.mqtt.seal.verify_signature`: libsodium where PyNaCl is installed)."""
        self.registry, self.central_key, self.store, self.chip_check = registry, central_key, store, chip_check
        self.verify = verify or verify_signature
        if verify is None and ED25519_BACKEND != "libsodium":  # ~2x the verify CPU per event: say so
            log.info("central_ed25519_without_libsodium", backend=ED25519_BACKEND, install="idstation[central]")
        self.counts: Counter[str] = Counter()
        self._counting = threading.Lock()  # check threads and the commit thread count side by side

    def check(self, topic: str, payload: bytes, received_at: float | None = None) -> Checked:
        """Every check that needs no store; a failure is :class:`EventRejected` with a reason."""
        try:
            raw, header, private, text = self._checked(topic, payload)
        except EventRejected as exc:
            self._count(exc.reason)
            raise
        incoming = Incoming(
            header.event_id,
            header.device_id,
            header.key_id,
            header.seq,
            header.kind,
            header.site,
            header.counter_id,
            str(raw.get("created_at")),
            received_at or time.time(),
            raw,
            bytes(payload),
            header_text=text,
        )
        return Checked(topic, raw, private, incoming)

    def accept(self, checked: Checked, outcome: Outcome) -> AcceptedEvent:
        """The event the store recorded, or :class:`EventRejected` (``duplicate``, ``replay``)."""
        try:
            _report(outcome, checked.incoming.device_id, checked.incoming.seq)
        except EventRejected as exc:
            self._count(exc.reason)
            raise
        self._count("accepted")
        return AcceptedEvent(checked.header, checked.topic, checked.private, outcome, checked.incoming.received_at)

    def redelivered(self, checked: Checked, outcome: Outcome) -> AcceptedEvent:
        """A held event never delivered (its listener died after the commit), delivered now."""
        self._count("redelivered")
        return AcceptedEvent(checked.header, checked.topic, checked.private, outcome, checked.incoming.received_at)

    def _count(self, what: str) -> None:
        with self._counting:
            self.counts[what] += 1

    def process(self, topic: str, payload: bytes, received_at: float | None = None) -> AcceptedEvent:
        """Check, record (a batch of one) and classify one message.

        Only a failure of the store itself escapes (StoreError: the caller retries the message
        later); any other failure of this one message is a rejection (``internal_error`` for the
        unforeseen).
        """
        checked = self.check(topic, payload, received_at)
        [outcome] = self.store.record([checked.incoming])
        return self.accept(checked, outcome)

    def _checked(self, topic: str, payload: bytes) -> _Verified:
        """The pure checks; anything unforeseen in them is this message's fault, not the centre's."""
        try:
            return self._verify(topic, payload)
        except EventRejected:
            raise
        except Exception as exc:  # one hostile message must never stop the centre
            log.error("central_event_check_failed", error=type(exc).__name__)
            raise EventRejected("internal_error", f"the event could not be checked: {type(exc).__name__}") from None

    def _verify(self, topic: str, payload: bytes) -> _Verified:
        """(the header as stored, its schema, the opened identity part, the received header text when
        the stored header is exactly what was received: the store may keep that text as it is)"""
        site, counter, kind = parse_topic(topic)
        try:
            frame = decode_frame(payload)  # splits bytes only: nothing of the header is parsed yet
        except SealError as exc:
            raise EventRejected("malformed", str(exc)) from None
        record = self.registry.by_key_id(frame.key_id)
        if record is None:
            if self.registry.by_key_id(frame.key_id, include_revoked=True) is not None:
                raise EventRejected("revoked_device", "the device is revoked")
            raise EventRejected("unknown_device", "no enrolled device holds this key")
        try:
            verify_frame(frame, record.public_raw, self.verify)
        except SealError:
            raise EventRejected("bad_signature", "bad signature") from None
        try:
            raw = frame.header  # parsed (bounded) only now that the signature holds
            header = parse_header(raw)
        except SealError as exc:
            raise EventRejected("bad_header", str(exc)) from None
        if header.device_id != record.device_id or header.key_id != record.key_id:
            raise EventRejected("wrong_topic", "the header names another device or key")
        if (header.site, header.counter_id) != (record.site, record.counter) or (site, counter, kind) != (
            record.site,
            record.counter,
            header.kind,
        ):
            raise EventRejected("wrong_topic", "published outside the device's own topics")
        private, text = None, frame.header_bytes.decode("utf-8")  # UTF-8: the header parsed
        if header.kind == "identity":
            try:
                private = open_private(frame.sealed, self.central_key, header.device_id, header.event_id)
            except SealError:
                raise EventRejected("undecryptable", "the sealed part does not decrypt") from None
            try:
                parse_private(private)  # the box built it as IdentityPrivate; the centre checks again
            except SealError as exc:
                raise EventRejected("bad_private", str(exc)) from None
            if self.chip_check is not None:
                verdict = self.chip_check(header.event_id, private)
                raw = {**raw, "centre_verification": verdict}  # a copy: the signed frame is kept as received
                text = None  # the stored header is no longer the received text
        return raw, header, private, text


def _report(obs: Outcome, device_id: str, seq: int) -> None:
    if obs.verdict is Verdict.DUPLICATE:
        raise EventRejected("duplicate", "event already received")
    if obs.verdict is Verdict.REPLAY:
        raise EventRejected("replay", "sequence number already used")
    if obs.verdict is Verdict.GAP and obs.missing:
        log.warning("central_seq_gap", device_id=device_id, missing_from=obs.missing[0], missing_to=obs.missing[1])
    elif obs.verdict is Verdict.FILLED:
        log.info("central_seq_gap_filled", device_id=device_id, seq=seq)
