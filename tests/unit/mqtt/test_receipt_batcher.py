"""The centre's receipt batching: at most one receipt per stream per interval, built from committed state."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idstation.mqtt.central.receipts import ReceiptBatcher, default_receipt_key
from idstation.mqtt.receipt import parse_receipt
from idstation.mqtt.seal import Signer

KEY = Ed25519PrivateKey.generate()
STREAM = "ed25519:0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class State:
    """A store's committed stream state, as the test sets it."""

    def __init__(self) -> None:
        self.upto, self.above = 0, []
        self.down = False

    def receipt_state(self, device_id: str, key_id: str) -> tuple[int, list[int]]:
        if self.down:
            raise OSError("store down")
        return self.upto, list(self.above)


class Wire:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.up = True

    def __call__(self, topic: str, payload: bytes) -> bool:
        if self.up:
            self.sent.append((topic, payload))
        return self.up

    def receipts(self) -> list:
        return [parse_receipt(p, [KEY.public_key()]) for _, p in self.sent]


def _batcher(interval: float = 0.2) -> tuple[ReceiptBatcher, State, Clock, Wire]:
    state, clock = State(), Clock()
    return ReceiptBatcher(Signer(KEY), state, interval=interval, clock=clock), state, clock, Wire()


def test_the_first_receipt_after_a_quiet_period_goes_out_at_once() -> None:
    batcher, state, _clock, wire = _batcher()
    state.upto = 1
    batcher.note("hn-01", "c01", "box-1", STREAM)
    assert batcher.publish_due(wire) == 1
    assert wire.sent[0][0] == "idstation/v1/hn-01/c01/receipt"
    assert wire.receipts()[0].upto == 1


def test_events_within_one_interval_share_one_receipt_with_the_latest_state() -> None:
    batcher, state, clock, wire = _batcher()
    state.upto = 1
    batcher.note("hn-01", "c01", "box-1", STREAM)
    batcher.publish_due(wire)
    for seq in range(2, 40):
        state.upto = seq
        batcher.note("hn-01", "c01", "box-1", STREAM)
        clock.now += 0.004
        batcher.publish_due(wire)
    assert len(wire.sent) == 1  # 0.152 s after the first: not yet due
    clock.now += 0.05
    batcher.publish_due(wire)
    assert [r.upto for r in wire.receipts()] == [1, 39]


def test_streams_of_different_devices_are_receipted_independently() -> None:
    batcher, _state, _clock, wire = _batcher()
    batcher.note("hn-01", "c01", "box-1", STREAM)
    batcher.note("hn-01", "c02", "box-2", STREAM)
    assert batcher.publish_due(wire) == 2
    assert {r.device_id for r in wire.receipts()} == {"box-1", "box-2"}


def test_a_receipt_not_handed_to_the_broker_stays_due() -> None:
    batcher, state, _clock, wire = _batcher()
    state.upto = 3
    wire.up = False
    batcher.note("hn-01", "c01", "box-1", STREAM)
    assert batcher.publish_due(wire) == 0
    wire.up = True
    assert batcher.publish_due(wire) == 1
    assert wire.receipts()[0].upto == 3


def test_a_store_failure_keeps_the_receipt_due() -> None:
    batcher, state, _clock, wire = _batcher()
    state.down = True
    batcher.note("hn-01", "c01", "box-1", STREAM)
    assert batcher.publish_due(wire) == 0
    state.down = False
    assert batcher.publish_due(wire) == 1


def test_a_note_without_an_event_header_is_ignored() -> None:
    batcher, _state, _clock, _wire = _batcher()
    batcher.note_header("idstation/v1/hn-01/c01/identity", {"device_id": "box-1"})
    assert batcher.pending() == 0


def test_the_receipt_key_defaults_to_the_central_keys_directory(tmp_path: Path) -> None:
    assert default_receipt_key(tmp_path / "keys" / "central.key.pem") == tmp_path / "keys" / "receipt_key.pem"


def test_each_noted_event_is_in_the_next_receipt_even_past_512_held_above_a_gap() -> None:
    batcher, state, _clock, wire = _batcher(interval=0.0)
    state.upto, state.above = 0, list(range(1001, 1513))  # a gap below: the lowest 512 held fill the list
    batcher.note("hn-01", "c01", "box-1", STREAM, 1600)
    batcher.publish_due(wire)
    receipt = wire.receipts()[-1]
    assert receipt.covers(1600)
    assert len(receipt.above) == 512


def test_a_note_during_publishing_is_owed_another_receipt() -> None:
    state, clock, wire = State(), Clock(), Wire()
    batcher = ReceiptBatcher(Signer(KEY), state, interval=0.2, clock=clock)

    def publish(topic: str, payload: bytes) -> bool:
        batcher.note("hn-01", "c01", "box-1", STREAM, 2)  # committed while the first receipt was on its way
        return wire(topic, payload)

    state.upto = 1
    batcher.note("hn-01", "c01", "box-1", STREAM, 1)
    batcher.publish_due(publish)
    clock.now += 0.3
    state.upto = 2
    batcher.publish_due(wire)
    assert [r.upto for r in wire.receipts()] == [1, 2]


def test_under_load_a_busy_stream_waits_a_longer_interval_never_more_than_the_maximum() -> None:
    state, clock, wire = State(), Clock(), Wire()
    batcher = ReceiptBatcher(Signer(KEY), state, interval=0.2, max_interval=0.5, busy_streams=50, clock=clock)
    streams = 400  # 8x the busy threshold: the grown interval (1.6 s) is capped at 0.5 s
    for i in range(streams):
        batcher.note("hn-01", "c01", f"box-{i}", STREAM, 1)
    assert batcher.publish_due(wire) == streams
    batcher.note("hn-01", "c01", "box-0", STREAM, 2)
    clock.now += 0.45
    assert batcher.publish_due(wire) == 0  # 0.2 s would have let it go
    clock.now += 0.05
    assert batcher.publish_due(wire) == 1
    last = wire.receipts()[-1]
    assert (last.device_id, last.covers(2)) == ("box-0", True)


class ManyState(State):
    """A store that answers every due stream's state in one round, counting its rounds."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0

    def receipt_states(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, list[int]]]:
        self.rounds += 1
        return {key: (3, []) for key in keys}


def test_the_states_of_all_due_streams_come_from_one_store_round() -> None:
    state, clock, wire = ManyState(), Clock(), Wire()
    batcher = ReceiptBatcher(Signer(KEY), state, clock=clock)
    for i in range(30):
        batcher.note("hn-01", "c01", f"box-{i}", STREAM, 3)
    assert batcher.publish_due(wire) == 30
    assert state.rounds == 1
    assert {r.upto for r in wire.receipts()} == {3}


class CountingState(State):
    """A store whose receipt reads are counted (the commit's state should make them unneeded)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def receipt_state(self, device_id: str, key_id: str) -> tuple[int, list[int]]:
        self.reads += 1
        return super().receipt_state(device_id, key_id)


def test_a_receipt_says_the_state_the_commit_noted_without_reading_the_store() -> None:
    state, clock, wire = CountingState(), Clock(), Wire()
    batcher = ReceiptBatcher(Signer(KEY), state, clock=clock)
    state.upto = 99  # what a store query would say: never asked
    batcher.note("hn-01", "c01", "box-1", STREAM, 5, state=(3, (5,)))
    batcher.note("hn-01", "c01", "box-1", STREAM, 6, state=(3, (5, 6)))  # a later commit of the same stream
    assert batcher.publish_due(wire) == 1
    [receipt] = wire.receipts()
    assert (receipt.upto, sorted(receipt.above), state.reads) == (3, [5, 6], 0)


def test_a_noted_state_survives_a_broker_that_takes_no_receipt() -> None:
    batcher, state, _clock, wire = _batcher()
    state.down = True  # a store query would fail: the noted state is enough
    wire.up = False
    batcher.note("hn-01", "c01", "box-1", STREAM, 4, state=(4, ()))
    assert batcher.publish_due(wire) == 0
    wire.up = True
    assert batcher.publish_due(wire) == 1
    assert wire.receipts()[0].upto == 4


def test_a_note_without_a_state_is_answered_from_the_store() -> None:
    state, clock, wire = CountingState(), Clock(), Wire()
    batcher = ReceiptBatcher(Signer(KEY), state, clock=clock)
    state.upto = 7
    batcher.note("hn-01", "c01", "box-1", STREAM, 6, state=(6, ()))
    batcher.note("hn-01", "c01", "box-1", STREAM, 7)  # a caller with no state: the store is the truth
    batcher.publish_due(wire)
    assert (wire.receipts()[0].upto, state.reads) == (7, 1)


class PortTransport:
    """The transport port as the receipt pump sees it: connected or not, with or without
    ``publish_many`` (the AMQP adapter's), recording each hand-over."""

    def __init__(self, *, many: bool) -> None:
        self.connected = True
        self.handovers: list[list[tuple[str, bytes, bool]]] = []
        if many:
            self.publish_many = self._many

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.handovers.append([(topic, payload, retain)])

    def _many(self, items, *, retain: bool = False) -> None:
        self.handovers.append([(topic, payload, retain) for topic, payload in items])


def _pump_with_streams(transport: PortTransport, streams: int):
    from idstation.mqtt.central.transport import ReceiptPump

    batcher, state, _clock, _wire = _batcher()
    state.upto = 3
    for i in range(streams):
        batcher.note("hn-01", f"c{i:02d}", f"box-{i}", STREAM)
    return ReceiptPump(batcher, transport), batcher


def test_the_pump_hands_the_due_receipts_to_an_amqp_transport_together() -> None:
    transport = PortTransport(many=True)
    pump, _ = _pump_with_streams(transport, 5)
    assert pump.publish_due() == 5
    (handover,) = transport.handovers  # one hand-over for the five
    assert sorted(topic for topic, _p, _r in handover) == [f"idstation/v1/hn-01/c{i:02d}/receipt" for i in range(5)]
    assert all(retain for _t, _p, retain in handover)
    assert [parse_receipt(p, [KEY.public_key()]).upto for _t, p, _r in handover] == [3] * 5


def test_the_pump_publishes_one_by_one_without_publish_many_and_keeps_receipts_while_disconnected() -> None:
    transport = PortTransport(many=False)
    pump, batcher = _pump_with_streams(transport, 3)
    transport.connected = False
    assert pump.publish_due() == 0 and transport.handovers == []
    assert batcher.pending()  # still owed: they go out after the reconnect
    transport.connected = True
    assert pump.publish_due() == 3
    assert len(transport.handovers) == 3


def test_the_load_is_every_stream_owing_a_receipt_not_only_those_due_at_the_same_tick() -> None:
    """Streams whose receipt is owed but not yet due count too: with 60 owing (40 waiting out
    their interval, 20 due) the interval grows to 0.24 s although only 20 are due at this tick."""
    state, clock, wire = State(), Clock(), Wire()
    batcher = ReceiptBatcher(Signer(KEY), state, interval=0.2, max_interval=2.0, busy_streams=50, clock=clock)
    for i in range(40):
        batcher.note("hn-01", "c01", f"a-{i}", STREAM, 1)
    assert batcher.publish_due(wire) == 40
    clock.now += 0.01
    for i in range(40):  # owed again, due only after their interval
        batcher.note("hn-01", "c01", f"a-{i}", STREAM, 2)
    for i in range(20):
        batcher.note("hn-01", "c01", f"b-{i}", STREAM, 1)
    assert batcher.publish_due(wire) == 20
    assert batcher.current_interval(60) == pytest.approx(0.24)
    batcher.note("hn-01", "c01", "b-0", STREAM, 2)
    clock.now += 0.22
    published = batcher.publish_due(wire)
    assert published == 40  # the a-streams (due 0.2 s after their receipt); b-0 waits 0.24 s
    clock.now += 0.03
    assert batcher.publish_due(wire) == 1
    assert wire.receipts()[-1].device_id == "b-0"


def test_a_long_maximum_bounds_the_receipts_of_many_busy_streams() -> None:
    """2,000 streams, each with an event every 0.1 s for 10 s: with the interval allowed to grow
    to 2 s they get a few receipts each, not one per event (receipts/s stay near busy_streams /
    interval until the maximum binds)."""
    state, clock, wire = State(), Clock(), Wire()
    batcher = ReceiptBatcher(Signer(KEY), state, interval=0.2, max_interval=2.0, busy_streams=50, clock=clock)
    state.upto = 1
    for tick in range(500):  # the pump's 20 ms ticks; each box's events come 0.1 s apart, staggered
        for i in range(tick % 5, 2000, 5):
            batcher.note("hn-01", "c01", f"box-{i}", STREAM, tick // 5 + 1)
        batcher.publish_due(wire)
        clock.now += 0.02
    per_stream = len(wire.sent) / 2000
    assert 5 <= per_stream <= 8  # the first at once, then about one per 2 s: not one per event (100)
