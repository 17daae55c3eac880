"""Retention: accepted events older than the configured period are purged, by the command and by
the listener's own loop; the stream state stays (an old frame sent again is still a replay)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from idstation.mqtt.central.retention import RetentionLoop
from idstation.mqtt.central.store import Store, Verdict

from ..helpers import wait_for
from .conftest import incoming

DAY = 86400.0


def _old_and_new(store: Store) -> None:
    now = time.time()
    store.record([incoming(1, received_at=now - 45 * DAY), incoming(2, received_at=now - 31 * DAY)])
    store.record([incoming(3, received_at=now - 2 * DAY), incoming(0, kind="heartbeat", received_at=now)])


def test_central_purge_removes_events_older_than_the_given_days(store: Store, store_url: str) -> None:
    _old_and_new(store)
    argv = [sys.executable, "-m", "idstation.agent.cli", "central", "purge", "--store", store_url, "--older-than", "30"]
    done = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-400:]
    assert json.loads(done.stdout)["removed"] == 2
    assert sorted(e.seq for e in store.events_after(0)) == [0, 3]
    assert store.max_seq("box-1") == 3  # stream state kept
    assert store.record([incoming(2)])[0].verdict is Verdict.REPLAY


def test_the_listener_retention_loop_purges_on_its_own(store: Store) -> None:
    _old_and_new(store)
    loop = RetentionLoop(store, 30, interval=0.1)
    loop.start()
    try:
        assert wait_for(lambda: loop.runs >= 1, 30)
    finally:
        loop.stop()
    assert sorted(e.seq for e in store.events_after(0)) == [0, 3]
    assert store.receipt_state("box-1", "k1") == (3, [])


def test_a_purge_larger_than_one_chunk_removes_everything_old(store: Store) -> None:
    old = time.time() - 40 * DAY
    store.record([incoming(seq, received_at=old) for seq in range(1, 26)] + [incoming(26)])
    assert store.purge(time.time() - 30 * DAY, chunk=10) == 25  # three transactions of at most 10
    assert [e.seq for e in store.events_after(0)] == [26]
