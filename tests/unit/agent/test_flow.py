"""The per-placement state machine: one event per placement, the fallbacks and every failure path."""

from __future__ import annotations

import pytest
from idstation.agent import flow
from idstation.agent.errors import AccessDenied, ApduError, SecureMessagingError
from idstation.agent.flow import (
    CameraFailed,
    CardGone,
    CardPresent,
    Indicate,
    LookForQr,
    Placement,
    PublishIdentity,
    PublishReadFailed,
    QrDecoded,
    QrTimeout,
    ReadChip,
    ReadDone,
    ReadFailed,
    State,
    Stored,
)
from idstation.hal.errors import CameraError, CardRemoved, TransmitError
from idstation.hal.ports import Signal

QR = "001090123456|012345678|Nguyễn Văn A|01011990|Nam|Phường X, Quận Y, Hà Nội|15042021"


def step(machine: Placement, event: object) -> list:
    """Feed ``event`` and answer each publish the way the daemon does when the outbox takes it."""
    actions = machine.handle(event)  # type: ignore[arg-type]
    for action in list(actions):
        if isinstance(action, PublishIdentity | PublishReadFailed):
            actions += machine.handle(Stored(ok=True))
    return actions


def published(actions: list) -> list:
    return [a for a in actions if isinstance(a, PublishIdentity | PublishReadFailed)]


def signals(actions: list) -> list[Signal]:
    return [a.signal for a in actions if isinstance(a, Indicate)]


def test_card_placement_looks_for_the_qr_until_the_budget_deadline() -> None:
    machine = Placement(qr_budget_s=3.0)
    actions = step(machine, CardPresent(at=10.0))
    assert LookForQr(13.0) in actions
    assert signals(actions) == [Signal.BUSY]


def test_good_qr_and_verified_chip_publish_one_verified_identity() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    read = step(machine, QrDecoded(QR, 1.2))
    assert read == [ReadChip(QR)]
    actions = step(machine, ReadDone(flow.VERDICT_VERIFIED, result="R"))
    assert published(actions) == [PublishIdentity(flow.VERIFIED, QR, "R")]
    assert signals(actions) == [Signal.OK]
    assert machine.state is State.DONE


def test_the_card_left_on_the_reader_is_not_read_again() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    step(machine, ReadDone(flow.VERDICT_VERIFIED))
    for i in range(5):
        assert step(machine, QrDecoded(QR, 2.0 + i)) == []
        assert step(machine, CardPresent(2.0 + i)) == []
    assert machine.outcomes == [flow.VERIFIED]


def test_a_new_placement_reads_again() -> None:
    machine = Placement()
    for at in (1.0, 10.0):
        step(machine, CardPresent(at))
        step(machine, QrDecoded(QR, at + 0.1))
        step(machine, ReadDone(flow.VERDICT_VERIFIED))
        assert signals(step(machine, CardGone(at + 1))) == [Signal.IDLE]
    assert machine.outcomes == [flow.VERIFIED, flow.VERIFIED]
    assert machine.state is State.IDLE


def test_unknown_csca_is_still_an_identity_event_marked_unknown_csca() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    actions = step(machine, ReadDone(flow.VERDICT_UNKNOWN_CSCA, result="R"))
    assert published(actions) == [PublishIdentity(flow.UNKNOWN_CSCA, QR, "R")]
    assert signals(actions) == [Signal.WARN]


@pytest.mark.parametrize("reason", [flow.CHIP_UNREADABLE, flow.READER_FAILED])
def test_unreadable_chip_after_a_good_qr_gives_an_unverified_identity_from_the_qr(reason: str) -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    actions = step(machine, ReadFailed(reason))
    assert published(actions) == [PublishIdentity(flow.UNVERIFIED, QR, None)]


@pytest.mark.parametrize(
    ("reason", "signal"),
    [(flow.ACCESS_DENIED, Signal.ERROR), (flow.CARD_REMOVED, Signal.ERROR), (flow.INTERNAL_ERROR, Signal.ERROR)],
)
def test_read_failures_publish_read_failed_with_their_reason(reason: str, signal: Signal) -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    actions = step(machine, ReadFailed(reason))
    assert published(actions) == [PublishReadFailed(reason)]
    assert signals(actions) == [signal]


def test_failed_verification_is_a_read_failed_event() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    assert published(step(machine, ReadDone(flow.VERDICT_FAILED))) == [PublishReadFailed(flow.VERIFICATION_FAILED)]


def test_no_qr_and_nothing_remembered_asks_for_the_qr_side_once() -> None:
    machine = Placement(qr_budget_s=2.0)
    step(machine, CardPresent(1.0))
    actions = step(machine, QrTimeout(3.0))
    assert published(actions) == [PublishReadFailed(flow.QR_NOT_VISIBLE)]
    assert Indicate(Signal.WARN, flow.MESSAGES[flow.QR_NOT_VISIBLE]) in actions
    assert step(machine, QrTimeout(5.0)) == []  # no loop while the card stays


def test_a_qr_seen_just_before_placement_is_tried_as_a_fallback() -> None:
    machine = Placement(qr_budget_s=2.0, qr_memory_s=30.0)
    assert step(machine, QrDecoded(QR, 0.5)) == []
    step(machine, CardPresent(1.0))
    assert step(machine, QrTimeout(3.0)) == [ReadChip(QR, fallback=True)]


def test_a_refused_fallback_key_asks_for_the_qr_side() -> None:
    machine = Placement(qr_budget_s=2.0)
    step(machine, QrDecoded(QR, 0.5))
    step(machine, CardPresent(1.0))
    step(machine, QrTimeout(3.0))
    assert published(step(machine, ReadFailed(flow.ACCESS_DENIED))) == [PublishReadFailed(flow.QR_NOT_VISIBLE)]


def test_a_stale_remembered_qr_is_not_used() -> None:
    machine = Placement(qr_budget_s=2.0, qr_memory_s=10.0)
    step(machine, QrDecoded(QR, 0.0))
    step(machine, CardPresent(100.0))
    assert published(step(machine, QrTimeout(102.0))) == [PublishReadFailed(flow.QR_NOT_VISIBLE)]


def test_forget_drops_the_remembered_qr() -> None:
    machine = Placement()
    step(machine, QrDecoded(QR, 0.5))
    machine.forget()
    step(machine, CardPresent(1.0))
    assert published(step(machine, QrTimeout(4.0))) == [PublishReadFailed(flow.QR_NOT_VISIBLE)]


def test_dead_camera_is_a_read_failed_event_and_the_next_card_works() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    assert published(step(machine, CameraFailed(1.5))) == [PublishReadFailed(flow.CAMERA_FAILED)]
    step(machine, CardGone(2.0))
    step(machine, CardPresent(3.0))
    step(machine, QrDecoded(QR, 3.1))
    assert published(step(machine, ReadDone(flow.VERDICT_VERIFIED))) == [PublishIdentity(flow.VERIFIED, QR, None)]


def test_card_taken_away_while_looking_is_card_removed_and_back_to_idle() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    actions = step(machine, CardGone(1.2))
    assert published(actions) == [PublishReadFailed(flow.CARD_REMOVED)]
    assert machine.state is State.IDLE


def test_card_taken_away_during_the_read_turns_a_chip_error_into_card_removed() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    assert step(machine, CardGone(1.3)) == []
    actions = step(machine, ReadFailed(flow.CHIP_UNREADABLE))
    assert published(actions) == [PublishReadFailed(flow.CARD_REMOVED)]
    assert machine.state is State.IDLE


def test_a_read_that_completed_before_removal_still_publishes_its_identity() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    step(machine, CardGone(1.3))
    assert published(step(machine, ReadDone(flow.VERDICT_VERIFIED))) == [PublishIdentity(flow.VERIFIED, QR, None)]
    assert machine.state is State.IDLE


def test_unknown_reason_strings_become_internal_error() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    assert published(step(machine, ReadFailed("whatever"))) == [PublishReadFailed(flow.INTERNAL_ERROR)]


def test_no_personal_data_in_the_repr_of_events_and_actions() -> None:
    texts = [repr(QrDecoded(QR, 1.0)), repr(ReadChip(QR)), repr(PublishIdentity(flow.VERIFIED, QR, {"x": QR}))]
    for text in texts:
        assert "001090123456" not in text
        assert "Nguyễn" not in text


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (CardRemoved("gone"), flow.CARD_REMOVED),
        (AccessDenied("no key"), flow.ACCESS_DENIED),
        (TransmitError("usb"), flow.READER_FAILED),
        (ApduError(0x6F00), flow.CHIP_UNREADABLE),
        (SecureMessagingError("mac"), flow.CHIP_UNREADABLE),
        (CameraError("dead"), flow.CAMERA_FAILED),
        (RuntimeError("bug"), flow.INTERNAL_ERROR),
    ],
)
def test_reason_for_maps_exceptions_to_fixed_reasons(exc: BaseException, reason: str) -> None:
    assert flow.reason_for(exc) == reason


def test_a_crash_while_reading_publishes_internal_error_once() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    assert published(machine.crash()) == [PublishReadFailed(flow.INTERNAL_ERROR)]
    assert machine.crash() == []


def test_a_refused_store_makes_fault_the_last_signal_never_a_queued_ok() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    actions = machine.handle(ReadDone(flow.VERDICT_VERIFIED, result="R"))
    assert published(actions) == [PublishIdentity(flow.VERIFIED, QR, "R")]
    assert signals(actions) == []  # nothing is shown before the store answers
    after = machine.handle(Stored(ok=False))
    assert after == [Indicate(Signal.ERROR, flow.NOT_STORED_MESSAGE)]


def test_a_refused_store_after_the_card_left_shows_fault_then_ready() -> None:
    machine = Placement()
    step(machine, CardPresent(1.0))
    step(machine, QrDecoded(QR, 1.1))
    step(machine, CardGone(1.2))
    machine.handle(ReadFailed(flow.CHIP_UNREADABLE))
    assert signals(machine.handle(Stored(ok=False))) == [Signal.ERROR, Signal.IDLE]
    assert machine.state is State.IDLE
