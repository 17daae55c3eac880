"""Nothing lost end to end: a real box keeps each event until `central listen` (a real process) receipts it.

The box is a real Publisher with the centre's receipt public key; the centre is the CLI in a
subprocess with its receipt key beside ``--key``. ``pub.drain()`` is true only when every data
event left the outbox, which with receipts on means: the centre's signed receipt covered it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .helpers import PRIVATE, make_publisher, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def receipt_key(central_key) -> Ed25519PrivateKey:
    """The centre's receipt key, as init-ca leaves it: receipt_key.pem beside the central key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (central_key.path.parent / "receipt_key.pem").write_bytes(pem)
    return key


class Centre:
    """`idstation central listen --json` in a subprocess; its data events' ids read from its stdout file."""

    def __init__(self, broker, registry, central_key, state: Path, *extra: str) -> None:
        run = f"{int(time.monotonic() * 1000)}"
        self.out = state.with_suffix(f".{run}.jsonl")
        argv = [
            sys.executable, "-m", "idstation.agent.cli", "central", "listen", "--broker", broker.url,
            "--registry", str(registry.path), "--key", str(central_key.path), "--state", str(state),
            "--client-id", "central-e2e", "--no-shared", "--json", *extra,
        ]  # fmt: skip
        self.err = state.with_suffix(f".{run}.err")  # one per run: a second centre's readiness is its own
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, env={**os.environ, "IDSTATION_LOG_LEVEL": "info"}
            )

    def wait_subscribed(self, timeout: float = 30) -> None:
        assert wait_for(lambda: "central_subscribed" in self.err.read_text(), timeout), self.err.read_text()[-2000:]

    def ids(self) -> list[str]:
        lines = [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]
        return [line["event_id"] for line in lines if line["kind"] in ("identity", "read_failed")]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def _box(mosquitto, device, central_key, receipt_key, path: Path, **options):
    pub = make_publisher(
        mosquitto.url, device, central_key.public, path, receipt_keys=[receipt_key.public_key()], **options
    )
    pub.start()
    return pub


def _each_reaches_once(centre: Centre, pub, ids: list[str]) -> None:
    """Once ``centre`` subscribes, the box's waiting events are resent, committed, receipted and deleted
    from its outbox; the centre then holds each of ``ids`` exactly once."""
    try:
        centre.wait_subscribed()
        assert pub.drain(60), pub.stats()
        assert wait_for(lambda: set(ids) <= set(centre.ids()), 10)
    finally:
        centre.stop()
    assert sorted(centre.ids()) == sorted(ids)  # each once


def test_events_published_before_the_centre_ever_subscribed_all_arrive_once(  # noqa: PLR0917
    mosquitto, registry, central_key, enrol, receipt_key, tmp_path
) -> None:
    device = enrol()
    pub = _box(mosquitto, device, central_key, receipt_key, tmp_path / "ob.sqlite", receipt_timeout_s=1.0)
    ids = [pub.submit_identity(PRIVATE) for _ in range(10)]
    assert wait_for(lambda: pub.stats()["outbox"]["awaiting_receipt"] == 10, 20)  # PUBACK 0x10: nobody there
    try:
        _each_reaches_once(Centre(mosquitto, registry, central_key, tmp_path / "state.sqlite"), pub, ids)
    finally:
        pub.stop()


def test_nothing_is_lost_when_the_centres_session_expires(  # noqa: PLR0917
    mosquitto, registry, central_key, enrol, receipt_key, tmp_path
) -> None:
    device = enrol()
    state = tmp_path / "state.sqlite"
    centre = Centre(mosquitto, registry, central_key, state, "--session-expiry", "1", "--protocol", "5")
    centre.wait_subscribed()
    centre.stop()
    pub = _box(mosquitto, device, central_key, receipt_key, tmp_path / "ob.sqlite", receipt_timeout_s=1.0)
    try:
        time.sleep(2.5)  # the centre's session is gone: what follows is dropped by the broker (0x10)
        ids = [pub.submit_identity(PRIVATE) for _ in range(5)]
        assert not pub.drain(3)  # at the broker, not receipted
        later = Centre(mosquitto, registry, central_key, state, "--session-expiry", "1", "--protocol", "5")
        _each_reaches_once(later, pub, ids)
    finally:
        pub.stop()


def test_nothing_is_lost_when_a_broker_without_persistence_restarts_before_the_receipt(  # noqa: PLR0917
    broker_factory, registry, central_key, enrol, receipt_key, tmp_path
) -> None:
    broker = broker_factory(persistence=False)
    device = enrol()
    state = tmp_path / "state.sqlite"
    centre = Centre(broker, registry, central_key, state)
    centre.wait_subscribed()
    centre.stop()  # its session holds what the box publishes now, in the broker's memory only
    pub = _box(broker, device, central_key, receipt_key, tmp_path / "ob.sqlite", receipt_timeout_s=1.0)
    try:
        ids = [pub.submit_identity(PRIVATE) for _ in range(5)]
        assert wait_for(lambda: pub.stats()["outbox"]["awaiting_receipt"] == 5, 20)
        broker.restart()  # the queued events are gone with the broker's memory
        _each_reaches_once(Centre(broker, registry, central_key, state), pub, ids)
    finally:
        pub.stop()


def test_without_a_receipt_key_the_centre_says_receipts_are_off(
    mosquitto, registry, central_key, enrol, tmp_path
) -> None:
    centre = Centre(mosquitto, registry, central_key, tmp_path / "state.sqlite")
    try:
        centre.wait_subscribed()
    finally:
        centre.stop()
    err = centre.err.read_text()
    assert "receipts are OFF" in err
    assert "central_receipts_off" in err


def test_a_named_receipt_key_that_does_not_load_is_a_configuration_error(mosquitto, registry, central_key, tmp_path):
    argv = [
        sys.executable, "-m", "idstation.agent.cli", "central", "listen", "--broker", mosquitto.url,
        "--registry", str(registry.path), "--key", str(central_key.path), "--receipt-key", str(tmp_path / "none.pem"),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 8, done.stderr[-1000:]


def test_a_session_expiry_out_of_range_is_a_usage_error(mosquitto, registry, central_key) -> None:
    argv = [
        sys.executable, "-m", "idstation.agent.cli", "central", "listen", "--broker", mosquitto.url,
        "--registry", str(registry.path), "--key", str(central_key.path), "--session-expiry", "-1",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr[-1000:]
