"""The centre's AMQP transport on a real 3-node RabbitMQ cluster: boxes publish MQTT to any node,
listeners share one quorum queue, receipts go back to the boxes as MQTT, a poison message is
dead-lettered after a bounded number of deliveries and the queue goes on."""

from __future__ import annotations

import threading
import time

import pika
import pytest
from idstation.mqtt.central.amqp import DEAD_QUEUE, DELIVERY_LIMIT, EVENT_QUEUE

from tests.fixtures.rabbitmq import needs_rabbitmq
from tests.integration.central.amqp_helpers import Collector, mqtt_client, purge, queue_depth, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_rabbitmq]


@pytest.fixture
def cluster(rabbitmq_cluster):
    yield rabbitmq_cluster
    purge(rabbitmq_cluster.amqp_urls[0], EVENT_QUEUE, DEAD_QUEUE)


def test_events_published_over_mqtt_to_any_node_reach_a_consumer_in_mqtt_topic_form(cluster) -> None:
    with Collector(cluster.amqp_urls[:1]) as collector:
        box = mqtt_client(cluster.mqtt_urls[1], "box-a")
        try:
            for i in range(20):
                box.publish("idstation/v1/hn01/c01/identity", f"event-{i}".encode(), qos=1).wait_for_publish(10)
            box.publish("idstation/v1/hn01/c01/receipt", b"not for the centre", qos=1).wait_for_publish(10)
        finally:
            box.disconnect()
        assert wait_for(lambda: len(collector.payloads()) == 20, 20)
        assert {d.topic for d in collector.deliveries} == {"idstation/v1/hn01/c01/identity"}
        assert sorted(collector.payloads()) == sorted(f"event-{i}".encode() for i in range(20))
    assert wait_for(lambda: queue_depth(cluster.amqp_urls[0], EVENT_QUEUE) == 0, 10)


def test_a_receipt_published_by_the_centre_reaches_the_box_over_mqtt(cluster) -> None:
    got: list[tuple[str, bytes]] = []
    arrived = threading.Event()
    box = mqtt_client(cluster.mqtt_urls[2], "box-b")
    box.on_message = lambda _c, _u, msg: (got.append((msg.topic, msg.payload)), arrived.set())
    box.subscribe("idstation/v1/hn01/c02/receipt", qos=1)[1]
    try:
        with Collector(cluster.amqp_urls[:1]) as collector:
            assert wait_for(lambda: _subscribed(cluster), 10)
            collector.transport.publish("idstation/v1/hn01/c02/receipt", b"signed receipt", retain=True)
            assert arrived.wait(20)
    finally:
        box.disconnect()
    assert got == [("idstation/v1/hn01/c02/receipt", b"signed receipt")]


def _subscribed(cluster) -> bool:
    return "mqtt-subscription-box-b" in cluster.ctl(0, "list_queues", "name")


def test_unacknowledged_messages_of_a_dead_consumer_go_to_another(cluster) -> None:
    hoarder = Collector(cluster.amqp_urls[:1], prefetch=10, handler=lambda _t, _d: False)  # never acks
    with hoarder:
        box = mqtt_client(cluster.mqtt_urls[0], "box-c")
        try:
            for i in range(10):
                box.publish("idstation/v1/s1/c1/read_failed", f"r{i}".encode(), qos=1).wait_for_publish(10)
        finally:
            box.disconnect()
        assert wait_for(lambda: len(hoarder.payloads()) == 10, 20)
    with Collector(cluster.amqp_urls[1:2]) as heir:  # another node: the quorum queue is the cluster's
        assert wait_for(lambda: len(heir.payloads()) == 10, 30)
        assert all(d.redelivered for d in heir.deliveries)


def test_a_poison_message_is_dead_lettered_after_a_bounded_number_of_deliveries(cluster) -> None:
    def handler(transport, delivery) -> bool:
        if delivery.payload == b"poison":  # a listener that gives it back every time (or dies on it)
            transport.requeue([delivery])
            return False
        return True

    with Collector(cluster.amqp_urls[:1], prefetch=5, handler=handler) as collector:
        box = mqtt_client(cluster.mqtt_urls[0], "box-d")
        try:
            box.publish("idstation/v1/s1/c1/identity", b"poison", qos=1).wait_for_publish(10)
            for i in range(30):
                box.publish("idstation/v1/s1/c1/identity", f"ok-{i}".encode(), qos=1).wait_for_publish(10)
        finally:
            box.disconnect()
        assert wait_for(lambda: queue_depth(cluster.amqp_urls[0], DEAD_QUEUE) == 1, 30)
        assert wait_for(lambda: len([p for p in collector.payloads() if p != b"poison"]) == 30, 20)
        poison_deliveries = collector.payloads().count(b"poison")
    assert 1 < poison_deliveries <= DELIVERY_LIMIT + 1
    assert queue_depth(cluster.amqp_urls[0], EVENT_QUEUE) == 0
    conn = pika.BlockingConnection(pika.URLParameters(cluster.amqp_urls[0]))
    try:
        _method, _props, body = conn.channel().basic_get(DEAD_QUEUE, auto_ack=True)
    finally:
        conn.close()
    assert body == b"poison"


def test_the_shipped_cluster_definitions_agree_with_what_the_listener_declares(cluster) -> None:
    """firmware_cfg/central/rabbitmq/definitions.json loads into a cluster, and a listener then
    declares the same queue without a mismatch (a mismatch would close its channel)."""
    from pathlib import Path

    import idstation.firmware_cfg

    source = Path(idstation.firmware_cfg.__file__).parent / "central" / "rabbitmq" / "definitions.json"
    copy = cluster.root / "definitions.json"
    copy.write_bytes(source.read_bytes())
    copy.chmod(0o644)
    cluster.ctl(0, "import_definitions", str(copy))
    assert "idstation-events" in cluster.ctl(0, "list_policies")
    with Collector(cluster.amqp_urls[1:2]) as collector:
        box = mqtt_client(cluster.mqtt_urls[2], "box-e")
        try:
            box.publish("idstation/v1/s9/c9/heartbeat", b"hb", qos=1).wait_for_publish(10)
        finally:
            box.disconnect()
        assert wait_for(lambda: collector.payloads() == [b"hb"], 20)
        assert collector.transport.connected


def test_every_node_runs_without_scheduler_busy_wait_as_the_shipped_recipe_says(cluster) -> None:
    """firmware_cfg/central/rabbitmq/rabbitmq-env.conf switches off Erlang's scheduler busy-wait;
    the test cluster runs the same flags, and they reach each node's Erlang VM."""
    import shlex
    from pathlib import Path

    import idstation.firmware_cfg

    from tests.fixtures.rabbitmq import ERL_ARGS

    env_conf = Path(idstation.firmware_cfg.__file__).parent / "central" / "rabbitmq" / "rabbitmq-env.conf"
    shipped = dict(
        line.split("=", 1) for line in env_conf.read_text().splitlines() if line and not line.startswith("#")
    )
    (value,) = shlex.split(shipped["SERVER_ADDITIONAL_ERL_ARGS"])  # the shell word, quotes removed
    assert value.split() == ERL_ARGS.split()
    for node in cluster.nodes:
        argv = Path(f"/proc/{node.pid()}/cmdline").read_bytes().decode().split("\0")
        for flag in ("sbwt", "sbwtdcpu", "sbwtdio"):  # erlexec hands "+flag" to the VM as "-flag"
            given = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] in (f"+{flag}", f"-{flag}")]
            assert given and given[-1] == "none", flag  # the last one given is the one in force


def test_with_on_messages_deliveries_are_handed_over_in_lists_and_acknowledged_in_batches(cluster) -> None:
    from idstation.mqtt.central.amqp import AmqpTransport, declare_topology

    publish = pika.BlockingConnection(pika.URLParameters(cluster.amqp_urls[0]))
    try:
        channel = publish.channel()
        declare_topology(channel)
        channel.confirm_delivery()  # each publish waits for the queue to take it (a loaded broker drops none)
        for i in range(500):
            channel.basic_publish("amq.topic", "idstation.v1.s1.c1.status", f"m{i:03d}".encode())
    finally:
        publish.close()
    assert wait_for(lambda: queue_depth(cluster.amqp_urls[0], EVENT_QUEUE) == 500, 20)
    bursts: list[list] = []
    lock = threading.Lock()
    transport = AmqpTransport(cluster.amqp_urls[:1], prefetch=200)

    def on_messages(deliveries: list) -> None:
        with lock:
            bursts.append(deliveries)
        transport.ack(deliveries)

    def taken() -> int:
        with lock:
            return sum(map(len, bursts))

    transport.start(lambda _d: pytest.fail("on_message is not used when on_messages is given"), on_messages)
    try:
        assert wait_for(lambda: taken() == 500, 30)
    finally:
        transport.stop()
    assert [d.payload for burst in bursts for d in burst] == [f"m{i:03d}".encode() for i in range(500)]
    assert {d.topic for burst in bursts for d in burst} == {"idstation/v1/s1/c1/status"}
    assert len(bursts) < 100
    assert wait_for(lambda: queue_depth(cluster.amqp_urls[0], EVENT_QUEUE) == 0, 10)


def _mixed_messages(count: int) -> list[tuple[bytes, pika.BasicProperties]]:
    """What the consumer's fast path reads (plain, every property) and what it leaves to pika (an
    array header, a body over frame_max in several frames, a body over one read, an empty body)."""
    everything = pika.BasicProperties(
        content_type="application/octet-stream", content_encoding="identity", headers={"x-box": "b1", "n": 7},
        delivery_mode=2, priority=1, correlation_id="c", reply_to="r", expiration="600000", message_id="m",
        timestamp=1_700_000_000, type="t", app_id="a",
    )  # fmt: skip
    shapes = [
        (b"p" * 700, pika.BasicProperties(delivery_mode=2)),
        (b"a" * 700, pika.BasicProperties(headers={"x-extra": [1, 2]})),
        (b"B" * 300_000, pika.BasicProperties(delivery_mode=2)),
        (b"", pika.BasicProperties()),
        (b"e" * 700, everything),
        (b"m" * 100_000, pika.BasicProperties()),
    ]
    return [(b"%04d:" % i + shapes[i % len(shapes)][0], shapes[i % len(shapes)][1]) for i in range(count)]


def _drain_twice(cluster, messages: list[tuple[bytes, pika.BasicProperties]], *, fast: bool) -> tuple[list, int]:
    """Publish ``messages`` into a queue of this run's own, consume each twice (requeued the
    first time, acknowledged the second) with an AmqpTransport; every delivery in order, and how
    many the fast path read."""
    from idstation.mqtt.central.amqp import AmqpTransport, declare_topology

    url, queue = cluster.amqp_urls[0], f"idstation.events.mix-{'fast' if fast else 'pika'}"
    publish = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = publish.channel()
        declare_topology(channel, queue=queue)
        channel.confirm_delivery()
        for body, props in messages:
            channel.basic_publish("amq.topic", "idstation.v1.s1.c1.status", body, props)
    finally:
        publish.close()
    assert wait_for(lambda: queue_depth(url, queue) == len(messages), 20), cluster.ctl(0, "list_consumers")
    seen: list = []
    transport = AmqpTransport(url, queue=queue, prefetch=20, fast=fast)

    def on_messages(deliveries: list) -> None:  # the listener's mode: bursts, settled by the owner
        for delivery in deliveries:
            seen.append(delivery)
            (transport.ack if delivery.redelivered else transport.requeue)([delivery])

    transport.start(lambda _d: pytest.fail("on_messages is given"), on_messages)
    try:
        assert transport.wait_ready(30)
        consumer = transport._fast
        assert wait_for(lambda: len(seen) == 2 * len(messages), 60)
    finally:
        transport.stop()
    assert wait_for(lambda: queue_depth(url, queue) == 0, 10)
    cleanup = pika.BlockingConnection(pika.URLParameters(url))
    try:
        cleanup.channel().queue_delete(queue)  # bound to amq.topic: it would take copies in later tests
    finally:
        cleanup.close()
    return seen, consumer.taken if consumer is not None else 0


def test_a_mix_of_fast_and_pika_deliveries_arrives_whole_in_order_and_counted_as_with_pika_alone(cluster) -> None:
    messages = _mixed_messages(36)
    outcomes = {}
    for fast in (True, False):
        seen, taken = _drain_twice(cluster, messages, fast=fast)
        first = [d.payload for d in seen if not d.redelivered]
        assert first == [body for body, _props in messages]  # every message, in queue order
        for body, _props in messages:
            mine = [(d.topic, d.redelivered, d.delivery_count) for d in seen if d.payload == body]
            assert mine == [("idstation/v1/s1/c1/status", False, 0), ("idstation/v1/s1/c1/status", True, 1)]
        outcomes[fast] = sorted((d.payload, d.redelivered, d.delivery_count) for d in seen)
        assert (taken > 0) == fast
        assert taken < len(seen)  # the array header, the big and the empty bodies went through pika
    assert outcomes[True] == outcomes[False]


@pytest.mark.parametrize("fast", [True, False])
def test_a_pause_mid_drain_returns_what_was_not_handed_over_and_resume_delivers_every_message(cluster, fast) -> None:
    from idstation.mqtt.central.amqp import AmqpTransport, declare_topology

    url, queue, count = cluster.amqp_urls[0], f"idstation.events.pause-{fast}", 300
    publish = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = publish.channel()
        declare_topology(channel, queue=queue)
        channel.confirm_delivery()
        for i in range(count):
            channel.basic_publish("amq.topic", "idstation.v1.s1.c1.status", b"%04d" % i + b"x" * 700)
    finally:
        publish.close()
    seen: list = []
    transport = AmqpTransport(url, queue=queue, prefetch=100, fast=fast)

    def on_message(delivery) -> None:  # pauses inside a callback, with deliveries still undispatched
        seen.append(delivery)
        transport.ack([delivery])
        if len(seen) == 10:
            transport.pause()

    transport.start(on_message)
    try:
        assert transport.wait_ready(30)
        assert wait_for(lambda: len(seen) >= 10, 20)
        time.sleep(1.0)
        paused_at = len(seen)
        assert paused_at == 10  # nothing handed over after the pause
        transport.resume()
        assert wait_for(lambda: len({d.payload for d in seen}) == count, 30)
    finally:
        transport.stop()
    payloads = [d.payload for d in seen]
    assert len(payloads) == len(set(payloads)) == count  # each once: the ones pause returned came back once
    assert wait_for(lambda: queue_depth(url, queue) == 0, 10)
    cleanup = pika.BlockingConnection(pika.URLParameters(url))
    try:
        cleanup.channel().queue_delete(queue)
    finally:
        cleanup.close()
