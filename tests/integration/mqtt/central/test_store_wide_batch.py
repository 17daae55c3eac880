"""A batch wider than one stream query (SQLite reads a batch's streams 400 a query): every stream,
new or held, with or without gaps, is classified and saved as in a batch of one stream each."""

from __future__ import annotations

from idstation.mqtt.central.store import Store, Verdict

from .conftest import incoming

DEVICES = 450  # > 400: two queries on SQLite


def test_a_batch_of_450_streams_keeps_every_stream_exact(store: Store) -> None:
    first = [incoming(1, device_id=f"box-{i:03d}") for i in range(DEVICES)]
    assert all(o.verdict is Verdict.NEW for o in store.record(first))
    # seq 3 opens a gap [2, 2] on the even boxes; the odd boxes go on with 2
    second = [incoming(3 if i % 2 == 0 else 2, device_id=f"box-{i:03d}") for i in range(DEVICES)]
    outcomes = store.record(second)
    assert [o.verdict for o in outcomes] == [Verdict.GAP if i % 2 == 0 else Verdict.NEW for i in range(DEVICES)]
    assert all(o.receipt == ((1, (3,)) if i % 2 == 0 else (2, ())) for i, o in enumerate(outcomes))
    # the even boxes fill their gap, the odd ones replay 2; new boxes join in the same batch
    third = [incoming(2, device_id=f"box-{i:03d}") for i in range(DEVICES)]
    third += [incoming(1, device_id=f"new-{i:03d}") for i in range(20)]
    outcomes = store.record(third)
    assert [o.verdict for o in outcomes[:DEVICES]] == [
        Verdict.FILLED if i % 2 == 0 else Verdict.REPLAY for i in range(DEVICES)
    ]
    assert all(o.verdict is Verdict.NEW for o in outcomes[DEVICES:])
    assert all(o.receipt == ((3, ()) if i % 2 == 0 else (2, ())) for i, o in enumerate(outcomes[:DEVICES]))
    assert store.gaps() == []
    assert [store.max_seq(f"box-{i:03d}") for i in (0, 1, 448, 449)] == [3, 2, 3, 2]
    assert store.max_seq("new-019") == 1
    # a duplicate in a later batch still gets its stream's receipt state
    [dup] = store.record([second[0]])
    assert dup.verdict is Verdict.DUPLICATE and dup.receipt == (3, ())
