"""A full disk under the outbox (a real tmpfs of a few hundred kB, mounted by the test as root).

What a counter relies on: once the disk is full, a new event is refused with a typed error that
names the cause (and an alarm goes to the centre), the publisher keeps running, every event
accepted before is still delivered, and once space is back new events are accepted again without
a restart.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from idstation.hal.errors import IdstationError
from idstation.mqtt.errors import OutboxDiskFull

from .helpers import PRIVATE, SECRETS, Collector, make_publisher, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "idstation-test-disk", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Another program (logs, a core dump) takes the remaining space."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            for _ in range(10_000):  # bounded: the disk is 1 MB
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def _alarmed(events: list) -> bool:
    return any(e.kind == "status" and e.header.get("info", {}).get("alarm") == "disk_full" for e in events)


def test_a_full_disk_refuses_new_events_and_loses_none_accepted(
    small_disk: Path, mosquitto, registry, central_key, enrol
) -> None:
    device = enrol()
    tmp_path = small_disk.parent
    pub = make_publisher(mosquitto.url, device, central_key.public, small_disk / "outbox.sqlite")
    accepted = [pub.submit_identity(PRIVATE) for _ in range(5)]  # the broker is not reached yet
    filler = _fill(small_disk)

    refused = 0
    for _ in range(400):  # bounded: the WAL takes the little that is left within a few events
        try:
            accepted.append(pub.submit_identity(PRIVATE))
        except OutboxDiskFull as exc:
            refused += 1
            assert isinstance(exc, IdstationError)
            assert "disk is full" in str(exc)
            assert not any(s in str(exc).encode() for s in SECRETS)
            if refused == 3:
                break
    assert refused == 3, "the disk never filled up"
    assert pub.stats()["disk_full"] is True

    with Collector(mosquitto.url, registry, central_key.path, tmp_path / "state.sqlite") as central:
        pub.start()
        assert wait_for(lambda: set(accepted) <= set(central.ids()), 20), "an accepted event was lost"
        assert wait_for(lambda: _alarmed(central.events), 10), "the centre did not hear about the full disk"

        filler.unlink()  # space is back: no restart needed
        later = pub.submit_identity(PRIVATE)
        assert pub.stats()["disk_full"] is False
        assert wait_for(lambda: later in central.ids(), 10)
        pub.stop()
    identity_seqs = [e.header["seq"] for e in central.events if e.kind == "identity"]
    assert len(identity_seqs) == len(set(identity_seqs)) == len(accepted) + 1


def test_a_full_disk_at_a_seq_reservation_is_the_same_typed_error(
    small_disk: Path, mosquitto, central_key, enrol
) -> None:
    """Every 1000th number is reserved in a side file first; that write failing is no different."""
    device = enrol()
    pub = make_publisher(mosquitto.url, device, central_key.public, small_disk / "outbox.sqlite")
    pub.submit_identity(PRIVATE)
    pub.outbox._reserved = pub.outbox.last_seq  # the next number needs a new reservation
    filler = _fill(small_disk)
    with pytest.raises(OutboxDiskFull):
        pub.submit_identity(PRIVATE)
    filler.unlink()
    assert pub.submit_identity(PRIVATE)
    assert pub.outbox.last_seq == 2
    pub.stop(0.5)
