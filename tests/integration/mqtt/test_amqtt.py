"""The pure-Python broker (amqtt 0.12, MQTT 3.1.1 only): publisher and listener fall back and deliver."""

from __future__ import annotations

import importlib.util

import pytest

from .helpers import PRIVATE, Collector, make_publisher, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("amqtt") is None, reason="amqtt (extra 'demo') is not installed"),
]


def test_delivery_over_mqtt_3_1_1_with_the_auto_protocol(broker_factory, registry, central_key, enrol, tmp_path):
    broker = broker_factory(implementation="amqtt")
    device = enrol()
    with Collector(broker.url, registry, central_key.path, tmp_path / "s.sqlite", protocol="3.1.1") as central:
        pub = make_publisher(broker.url, device, central_key.public, tmp_path / "ob.sqlite", protocol="auto")
        pub.start()
        ids = [pub.submit_identity(PRIVATE) for _ in range(5)]
        assert pub.drain(20)
        assert wait_for(lambda: set(ids) <= set(central.ids()), 10)
        assert pub.stats()["protocol"] == "3.1.1"
        pub.stop()
