"""Fuzzing the box's receipt handling (hypothesis, bounded): whatever receipts arrive, a row leaves
the outbox only if a valid receipt for this device and key covers its seq; everything else stays."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.client_receipts import ReceiptTracker
from idstation.mqtt.outbox import Lane, Outbox
from idstation.mqtt.receipt import build_receipt
from idstation.mqtt.seal import Signer

from .conftest import PRIVATE, World

EXAMPLES = max(10, int(os.environ.get("IDSTATION_FUZZ_EXAMPLES", "150")) // 2)
# derandomize: the same examples on every run (a CI run is reproducible, never flaky); a wider
# search is a bigger IDSTATION_FUZZ_EXAMPLES
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
TRUSTED = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()
N = 12

RECEIPT = st.tuples(
    st.booleans(),  # signed by the trusted key?
    st.sampled_from(["box-1", "box-2"]),  # device named
    st.booleans(),  # this device's key id?
    st.integers(0, N + 3),  # upto
    st.lists(st.integers(1, N + 3), max_size=5),  # above (filtered > upto)
)


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
    return World(tmp_path_factory.mktemp("fuzz-box")).device("box-1")


@FUZZ
@given(st.lists(RECEIPT, max_size=6) | st.lists(st.binary(max_size=80).map(lambda b: ("raw", b)), max_size=3))
def test_only_valid_covering_receipts_delete_rows(builder, tmp_path_factory, receipts) -> None:
    now = [1_000_000.0]
    box = Outbox(tmp_path_factory.mktemp("ob") / "ob.sqlite", clock=lambda: now[0])
    build = lambda s: builder.build("identity", s, private=PRIVATE)  # noqa: E731
    rows = [box.append("identity", "t/identity", build) for _ in range(N)]
    for row in rows:
        box.mark_at_broker(row.id)
    tracker = ReceiptTracker([TRUSTED.public_key()], "t/receipt", "box-1", 900.0)
    covered: set[int] = set()
    for item in receipts:
        if item[0] == "raw":
            tracker.offer("t/receipt", item[1])
            continue
        trusted, device, own_key, upto, above = item
        above = sorted({s for s in above if s > upto})
        key_id = builder.signer.key_id if own_key else "ed25519:0000000000000000"
        signer = Signer(TRUSTED if trusted else STRANGER)
        tracker.offer("t/receipt", build_receipt(device, key_id, upto, above, signer))
        if trusted and device == "box-1" and own_key and upto <= N and all(s <= N for s in above):
            covered |= set(range(1, upto + 1)) | set(above)
    tracker.apply(box, builder.signer.key_id)
    box.flush_acks()
    now[0] += 10**7  # every row still waiting is now due again
    left = {r.seq for r in box.pending(Lane.BACKLOG, 100)}
    assert left == {row.seq for row in rows} - covered
    box.close()
