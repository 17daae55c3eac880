"""How many events a listener records per store transaction when ``--max-batch`` is not given:
400, and on AMQP never more than half of what the listener may hold (``--prefetch``), so the
next batch is checked while one commits; the command's help says the same number."""

from __future__ import annotations

import subprocess
import sys

import pytest
from idstation.agent.cli import central as cli
from idstation.mqtt.central.listener import DEFAULT_MAX_BATCH, default_max_batch


@pytest.mark.parametrize(
    ("prefetch", "expected"), [(None, 400), (1000, 400), (800, 400), (799, 399), (500, 250), (3, 1), (1, 1)]
)
def test_the_default_batch_is_400_and_at_most_half_the_prefetch(prefetch, expected) -> None:
    assert default_max_batch(prefetch) == expected


def test_the_command_states_the_listeners_default() -> None:
    assert cli.DEFAULT_MAX_BATCH == DEFAULT_MAX_BATCH
    done = subprocess.run(
        [sys.executable, "-m", "idstation.agent.cli", "central", "listen", "--help"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    assert f"(default {DEFAULT_MAX_BATCH}," in " ".join(done.stdout.split())


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"amqp": ["amqp://127.0.0.1:1/%2F"], "prefetch": 300}, 150),
        ({"amqp": ["amqp://127.0.0.1:1/%2F"]}, 400),  # the default prefetch, 1000
        ({"amqp": ["amqp://127.0.0.1:1/%2F"], "prefetch": 300, "max_batch": 280}, 280),  # as given
        ({}, 400),  # MQTT
    ],
)
def test_a_listener_batches_by_the_default_unless_told(tmp_path, options, expected) -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from idstation.mqtt.central.listener import CentralListener
    from idstation.mqtt.central.registry import Registry

    registry = Registry(tmp_path / "registry", create=True)
    listener = CentralListener(
        "mqtt://127.0.0.1:1",
        registry,
        X25519PrivateKey.generate(),
        on_event=id,
        store=f"sqlite:///{tmp_path}/central.db",
        **options,
    )  # built, never started: nothing connects
    try:
        assert listener.intake.max_batch == expected
    finally:
        listener.store.close()


def test_a_listener_grows_its_receipt_interval_up_to_what_it_is_told(tmp_path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from idstation.mqtt.central.listener import CentralListener
    from idstation.mqtt.central.receipts import MAX_INTERVAL
    from idstation.mqtt.central.registry import Registry
    from idstation.mqtt.seal import Signer

    registry = Registry(tmp_path / "registry", create=True)
    made = []
    for extra in ({}, {"receipt_max_interval": 3.0}):
        listener = CentralListener(
            "mqtt://127.0.0.1:1",
            registry,
            X25519PrivateKey.generate(),
            on_event=id,
            store=f"sqlite:///{tmp_path}/central-{len(made)}.db",
            receipt_signer=Signer(Ed25519PrivateKey.generate()),
            **extra,
        )  # built, never started: nothing connects
        made.append(listener.receipts.current_interval(10_000))  # far beyond the busy threshold
        listener.store.close()
    assert made == [MAX_INTERVAL, 3.0]
    assert cli.RECEIPT_MAX_INTERVAL == MAX_INTERVAL  # the command's help states the library's default
