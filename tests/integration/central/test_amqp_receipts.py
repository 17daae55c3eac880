"""Receipts handed to the AMQP transport together (``publish_many``: the receipt pump's tick) on
the real 3-node cluster: every one reaches its box over MQTT, in the order given, and a receipt
published alone after them comes after them."""

from __future__ import annotations

import threading

import pytest
from idstation.mqtt.central.amqp import EVENT_QUEUE

from tests.fixtures.rabbitmq import needs_rabbitmq
from tests.integration.central.amqp_helpers import Collector, mqtt_client, purge, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_rabbitmq]


def test_receipts_published_together_reach_each_box_whole_and_in_order(rabbitmq_cluster) -> None:
    cluster = rabbitmq_cluster
    topics = [f"idstation/v1/hn01/r{i}/receipt" for i in range(3)]
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def on_message(_c, _u, msg) -> None:
        with lock:
            got.append((msg.topic, msg.payload))

    box = mqtt_client(cluster.mqtt_urls[1], "box-receipts-many")
    box.on_message = on_message
    for topic in topics:
        box.subscribe(topic, qos=1)
    sent = [(topics[n % 3], b"receipt %03d" % n) for n in range(120)]  # interleaved over the three
    try:
        with Collector(cluster.amqp_urls[:1]) as collector:
            name = "mqtt-subscription-box-receipts-many"
            assert wait_for(lambda: name in cluster.ctl(0, "list_queues", "name"), 20)
            collector.transport.publish_many(sent[:100], retain=True)
            collector.transport.publish_many([], retain=True)  # nothing to send: nothing happens
            collector.transport.publish_many(sent[100:119], retain=True)
            collector.transport.publish(*sent[119], retain=True)
            assert wait_for(lambda: len(got) >= 120, 30), f"{len(got)} of 120"
    finally:
        box.disconnect()
        purge(cluster.amqp_urls[0], EVENT_QUEUE)
    for topic in topics:  # one subscription queue: each box's receipts in the order handed over
        assert [p for t, p in got if t == topic] == [p for t, p in sent if t == topic]
    assert sorted(got) == sorted(sent)
