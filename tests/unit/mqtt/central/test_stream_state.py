"""The stream state machine (store/base.py classify, abandon_below) on its own, pure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from idstation.mqtt.central.store.base import StreamState, Verdict, abandon_below, classify
from idstation.mqtt.receipt import receipt_range


@given(st.permutations(list(range(1, 40))))
def test_any_arrival_order_of_a_complete_stream_ends_with_no_gap(order: list[int]) -> None:
    state = StreamState()
    verdicts = [classify(state, seq).verdict for seq in order]
    assert Verdict.REPLAY not in verdicts
    assert (state.max_seq, state.gaps) == (39, [])
    assert receipt_range(state.max_seq, state.gaps) == (39, [])


@given(st.lists(st.integers(1, 60), min_size=1, max_size=80))
def test_a_seq_is_accepted_at_most_once_and_held_numbers_are_exactly_the_accepted_ones(seqs: list[int]) -> None:
    state = StreamState()
    accepted = [seq for seq in seqs if classify(state, seq).accepted]
    assert len(accepted) == len(set(accepted)) == len(set(seqs))  # every later copy is a replay
    missing = {n for lo, hi in state.gaps for n in range(lo, hi + 1)}
    assert missing == set(range(1, state.max_seq + 1)) - set(accepted)


def test_a_floor_gives_up_only_the_gaps_below_it() -> None:
    state = StreamState()
    for seq in (1, 5, 9):
        classify(state, seq)
    assert abandon_below(state, 7) == [(2, 4), (6, 6)]
    assert state.gaps == [(7, 8)]
    assert abandon_below(state, 7) == []  # nothing more below the floor
    assert classify(state, 3).verdict is Verdict.REPLAY  # given up: never accepted later
