"""One card placement, as a pure state machine (no I/O, no clock, no threads).

Theory of operation. The daemon feeds events (the card arrived, the camera decoded a QR, the
QR budget ran out, the chip read finished or failed, the card left) and executes the actions the
machine returns (look for the QR until a deadline, read the chip with the QR's keys, publish an
identity or read-failed event, signal the clerk). One placement produces exactly one published
event; the card lying on the reader afterwards produces nothing until it leaves (read once).

    IDLE --card_present--> LOOKING --qr_decoded--> READING --read_done--> DONE --card_removed--> IDLE
                              |  qr_timeout: a QR seen just before placement? READING (fallback)
                              |              else read_failed qr_not_visible, "show the QR side"
                              |  camera_failed / card_removed: read_failed, DONE / IDLE

Outcomes (the rules of issue 5):
- chip read and passive authentication good: identity ``verified``;
- signer chains to no configured CSCA: identity ``unknown_csca`` (the centre judges);
- chip unreadable (dead chip, reader fault) after a good QR: identity from the QR alone, ``unverified``;
- card taken away early, wrong key, failed verification, dead camera: read_failed with a fixed reason.
The clerk's indication follows the store's outcome: a publish action is answered by ``Stored``
(``ok`` False when the outbox refused the event), and only then does the machine emit the
outcome's signal, or FAULT "event could not be stored"; nothing is signalled after it.
A QR remembered from before the placement is a fallback only: when its keys fail too the clerk is
asked to show the QR side. Any unexpected event in a state is ignored (logged by the caller), so a
stray camera hit or a duplicate removal can never wedge the machine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from idstation.agent.errors import AccessDenied, ParseError, SecureMessagingError, VerificationError
from idstation.hal.errors import CameraError, CardRemoved, DeviceError, IdstationError, NoCard, TransmitError
from idstation.hal.ports import Signal

# Fixed read-failed reasons (the ``reason`` of read_failed events; never personal data).
CARD_REMOVED = "card_removed"
ACCESS_DENIED = "access_denied"
VERIFICATION_FAILED = "verification_failed"
CAMERA_FAILED = "camera_failed"
CHIP_UNREADABLE = "chip_unreadable"
QR_NOT_VISIBLE = "qr_not_visible"
READER_FAILED = "reader_failed"
INTERNAL_ERROR = "internal_error"
REASONS = frozenset(
    {CARD_REMOVED, ACCESS_DENIED, VERIFICATION_FAILED, CAMERA_FAILED, CHIP_UNREADABLE, QR_NOT_VISIBLE,
     READER_FAILED, INTERNAL_ERROR}
)  # fmt: skip

# Identity statuses.
VERIFIED = "verified"
UNKNOWN_CSCA = "unknown_csca"
UNVERIFIED = "unverified"

# Verdicts of a completed chip read (the caller classifies the read result into one of these).
VERDICT_VERIFIED = "verified"
VERDICT_UNKNOWN_CSCA = "unknown_csca"
VERDICT_FAILED = "failed"

MESSAGES = {
    VERIFIED: "OK: card read and verified",
    UNKNOWN_CSCA: "CHECK: card read, issuer not in the trust list",
    UNVERIFIED: "CHECK: chip unreadable, QR data sent unverified",
    CARD_REMOVED: "AGAIN: card removed too early, place it again",
    ACCESS_DENIED: "AGAIN: chip refused the key, show the QR side",
    VERIFICATION_FAILED: "STOP: chip data failed verification",
    CAMERA_FAILED: "FAULT: camera not working",
    CHIP_UNREADABLE: "FAULT: chip could not be read",
    QR_NOT_VISIBLE: "TURN: show the QR side to the camera",
    READER_FAILED: "FAULT: reader error",
    INTERNAL_ERROR: "FAULT: internal error",
}
NOT_STORED = "not_stored"  # not a read-failed reason: the outbox refused the event (full disk, ...)
NOT_STORED_MESSAGE = "FAULT: event could not be stored"


class State(enum.StrEnum):
    IDLE = "idle"
    LOOKING = "looking"  # card present, camera looking for the QR
    READING = "reading"  # chip read in progress
    DONE = "done"  # event published, card still on the reader


# ---- events in -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CardPresent:
    at: float


@dataclass(frozen=True, slots=True)
class CardGone:
    at: float


@dataclass(frozen=True, slots=True)
class QrDecoded:
    """A QR that parsed as a citizen-card payload. ``text`` never reaches a log or repr."""

    text: str = field(repr=False)
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class QrTimeout:
    at: float


@dataclass(frozen=True, slots=True)
class CameraFailed:
    at: float


@dataclass(frozen=True, slots=True)
class ReadDone:
    """The chip was read; ``verdict`` is one of VERDICT_*; ``result`` is the reader's opaque result."""

    verdict: str
    result: object = field(repr=False, default=None)


@dataclass(frozen=True, slots=True)
class ReadFailed:
    """The chip read raised; ``reason`` is one of REASONS (see ``reason_for``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer to a publish action: the outbox holds the event (``ok``) or refused it."""

    ok: bool = True


Event = CardPresent | CardGone | QrDecoded | QrTimeout | CameraFailed | ReadDone | ReadFailed | Stored


# ---- actions out -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Indicate:
    signal: Signal
    message: str


@dataclass(frozen=True, slots=True)
class LookForQr:
    deadline: float


@dataclass(frozen=True, slots=True)
class ReadChip:
    """Read the chip with the keys derived from ``qr_text`` (``fallback``: a QR seen before placement)."""

    qr_text: str = field(repr=False)
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class PublishIdentity:
    status: str  # VERIFIED, UNKNOWN_CSCA, UNVERIFIED
    qr_text: str | None = field(repr=False, default=None)
    result: object = field(repr=False, default=None)  # None: from the QR alone


@dataclass(frozen=True, slots=True)
class PublishReadFailed:
    reason: str


Action = Indicate | LookForQr | ReadChip | PublishIdentity | PublishReadFailed


@dataclass
class Placement:
    """The state machine of one reader. ``handle(event)`` returns the actions to execute, in order."""

    qr_budget_s: float = 3.0
    qr_memory_s: float = 60.0
    state: State = State.IDLE
    _qr: str | None = field(default=None, repr=False)
    _fallback: bool = False
    _removed: bool = False
    _seen_qr: str | None = field(default=None, repr=False)
    _seen_at: float = float("-inf")
    _announce: Indicate | None = None  # the outcome's signal, shown once the store answers
    _leave_after_store: bool = False  # the card left during the read: "ready" after the signal
    outcomes: list[str] = field(default_factory=list)  # statuses/reasons published, in order

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, QrDecoded) and self.state is not State.LOOKING:
            self._seen_qr, self._seen_at = event.text, event.at  # remember for a later placement
            return []
        if isinstance(event, Stored):
            return self._stored(event.ok)
        handler = getattr(self, f"_{self.state.value}")
        actions: list[Action] = handler(event)
        return actions

    # -- states --------------------------------------------------------------------------------
    def _idle(self, event: Event) -> list[Action]:
        if isinstance(event, CardPresent):
            self.state, self._qr, self._fallback, self._removed = State.LOOKING, None, False, False
            return [Indicate(Signal.BUSY, "reading: keep the card still"), LookForQr(event.at + self.qr_budget_s)]
        return []

    def _looking(self, event: Event) -> list[Action]:
        if isinstance(event, QrDecoded):
            self._seen_qr, self._seen_at = event.text, event.at
            return self._read(event.text, fallback=False)
        if isinstance(event, QrTimeout):
            if self._seen_qr is not None and event.at - self._seen_at <= self.qr_memory_s + self.qr_budget_s:
                return self._read(self._seen_qr, fallback=True)
            return self._fail(QR_NOT_VISIBLE, Signal.WARN)
        if isinstance(event, CameraFailed):
            return self._fail(CAMERA_FAILED)
        if isinstance(event, CardGone):
            self._leave_after_store = True
            return self._fail(CARD_REMOVED)
        return []

    def _reading(self, event: Event) -> list[Action]:
        if isinstance(event, CardGone):
            self._removed = True  # the read in flight will notice; its outcome decides
            return []
        if isinstance(event, ReadDone):
            actions = self._done_read(event.verdict, event.result)
        elif isinstance(event, ReadFailed):
            actions = self._failed_read(event.reason)
        else:
            return []
        self._leave_after_store = self._removed
        return actions

    def _done(self, event: Event) -> list[Action]:
        if isinstance(event, CardGone):
            return self._gone()
        return []

    # -- outcomes ------------------------------------------------------------------------------
    def _read(self, qr_text: str, fallback: bool) -> list[Action]:
        self.state, self._qr, self._fallback = State.READING, qr_text, fallback
        return [ReadChip(qr_text, fallback=fallback)]

    def _done_read(self, verdict: str, result: object) -> list[Action]:
        if verdict == VERDICT_VERIFIED:
            return self._identity(VERIFIED, result, Signal.OK)
        if verdict == VERDICT_UNKNOWN_CSCA:
            return self._identity(UNKNOWN_CSCA, result, Signal.WARN)
        return self._fail(VERIFICATION_FAILED)

    def _failed_read(self, reason: str) -> list[Action]:
        if reason not in REASONS:
            reason = INTERNAL_ERROR
        if self._removed and reason != ACCESS_DENIED:
            reason = CARD_REMOVED
        if self._fallback and reason == ACCESS_DENIED:
            return self._fail(QR_NOT_VISIBLE, Signal.WARN)
        if reason in {CHIP_UNREADABLE, READER_FAILED} and not self._fallback:
            return self._identity(UNVERIFIED, None, Signal.WARN)
        return self._fail(reason)

    def _identity(self, status: str, result: object, signal: Signal) -> list[Action]:
        self.state = State.DONE
        self.outcomes.append(status)
        qr, self._qr = self._qr, None
        self._announce = Indicate(signal, MESSAGES[status])
        return [PublishIdentity(status, qr, result)]

    def _fail(self, reason: str, signal: Signal = Signal.ERROR) -> list[Action]:
        self.state, self._qr = State.DONE, None
        self.outcomes.append(reason)
        self._announce = Indicate(signal, MESSAGES[reason])
        return [PublishReadFailed(reason)]

    def _stored(self, ok: bool) -> list[Action]:
        """The store answered the publish: the outcome's signal, or FAULT when it refused the event."""
        announce, self._announce = self._announce, None
        if announce is None:
            return []
        if not ok:
            self.outcomes.append(NOT_STORED)
            announce = Indicate(Signal.ERROR, NOT_STORED_MESSAGE)
        actions: list[Action] = [announce]
        if self._leave_after_store:
            actions.extend(self._gone())
        return actions

    def _gone(self) -> list[Action]:
        self.state, self._removed, self._leave_after_store = State.IDLE, False, False
        return [Indicate(Signal.IDLE, "ready: place a card")]

    def crash(self) -> list[Action]:
        """The caller's execution of an action failed unexpectedly: publish internal_error once."""
        if self.state in {State.LOOKING, State.READING}:
            return self._fail(INTERNAL_ERROR)
        return []

    def expire(self, now: float) -> None:
        """Forget a remembered QR once its window has passed (it is personal data in memory)."""
        if self._seen_qr is not None and now - self._seen_at > self.qr_memory_s + self.qr_budget_s:
            self.forget()

    def forget(self) -> None:
        """Drop the remembered QR (personal data in memory) once its window is over or on stop."""
        self._seen_qr, self._seen_at = None, float("-inf")


def reason_for(exc: BaseException) -> str:
    """The read-failed reason of an exception raised by a chip read (most specific type first)."""
    table: tuple[tuple[type[BaseException], str], ...] = (
        (CardRemoved, CARD_REMOVED),
        (NoCard, CARD_REMOVED),
        (AccessDenied, ACCESS_DENIED),
        (CameraError, CAMERA_FAILED),
        (TransmitError, READER_FAILED),
        (DeviceError, READER_FAILED),
        (SecureMessagingError, CHIP_UNREADABLE),
        (VerificationError, VERIFICATION_FAILED),
        (ParseError, CHIP_UNREADABLE),
        (IdstationError, CHIP_UNREADABLE),
    )
    for kind, reason in table:
        if isinstance(exc, kind):
            return reason
    return INTERNAL_ERROR
