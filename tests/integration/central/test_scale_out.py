"""The centre scaled out: listener processes (``central listen --amqp``) sharing one PostgreSQL
and one quorum queue of a real 3-node RabbitMQ cluster, simulated boxes publishing genuinely
signed events over MQTT. Whatever fails — a listener killed, PostgreSQL restarted, a broker node
killed — every event a box had ends up in the store exactly once, each stream complete."""

from __future__ import annotations

import itertools
import subprocess
import time

import pytest
from idstation.mqtt.central.amqp import DEAD_QUEUE, EVENT_QUEUE

from tests.fixtures.rabbitmq import needs_rabbitmq
from tests.integration.central.amqp_helpers import mqtt_client, purge, queue_depth, wait_for
from tests.integration.central.boxes import build_frames, interleave, run_gateways
from tests.integration.central.fleet import write_devices
from tests.integration.central.scale_helpers import (
    ListenerPool,
    central_keys,
    open_gaps,
    stored_count,
    stream_report,
    wait_stored,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_rabbitmq]


@pytest.fixture
def centre(rabbitmq_cluster, postgres_server, tmp_path_factory):
    """A fresh database (migrated), an empty queue, a registry and the centre's keys."""
    purge(rabbitmq_cluster.amqp_urls[0], EVENT_QUEUE, DEAD_QUEUE)
    root = tmp_path_factory.mktemp("centre")
    postgres_server.start()
    url = postgres_server.create_database()
    subprocess.run(["idstation", "central", "migrate", "--store", url], check=True, capture_output=True, timeout=60)
    pools: list[ListenerPool] = []

    def pool(boxes: int, listeners: int) -> tuple[ListenerPool, list, object]:
        devices = write_devices(root / "registry", boxes)
        central = central_keys(root)
        made = ListenerPool(root, url, rabbitmq_cluster.amqp_urls, root / "registry", count=listeners)
        pools.append(made)
        return made, devices, central

    yield rabbitmq_cluster, postgres_server, url, pool
    for made in pools:
        made.stop()


def _assert_complete(url: str, boxes: int, per_box: int) -> None:
    report = stream_report(url)
    assert len(report) == boxes
    incomplete = {d: r for d, r in report.items() if r != (per_box, per_box, per_box, per_box)}
    assert not incomplete, f"{len(incomplete)} streams incomplete or duplicated, e.g. {next(iter(incomplete.items()))}"
    assert open_gaps(url) == 0


def test_three_listeners_killed_in_turn_store_20000_events_exactly_once(centre) -> None:
    cluster, _pg, url, pool = centre
    boxes, per_box = 200, 100
    listeners, devices, central = pool(boxes, 3)
    frames = interleave(build_frames(devices, per_box, central.public_key()))
    listeners.start(0, fault="after_commit:5")  # dies between a commit and its acknowledgement
    listeners.start(1)
    listeners.start(2)
    assert listeners.wait_ready(), "the listeners did not become ready"
    # the boxes publish for ~20 s (1,000 events/s in all): the listeners drain faster than that, and
    # a kill every 3 s must land while the events still arrive
    gateways = run_gateways(cluster.mqtt_urls, frames, 10, rate=1000)
    box = mqtt_client(cluster.mqtt_urls[1], "hostile")
    for _ in range(3):  # garbage on a real box's topic: rejected with a reason, never blocks the queue
        box.publish(
            f"idstation/v1/{devices[0].site}/{devices[0].counter}/identity", b"garbage", qos=1
        ).wait_for_publish(10)
    box.disconnect()
    victims = itertools.cycle(range(3))
    kills = 0
    last_kill = time.monotonic()

    def tick() -> None:
        nonlocal kills, last_kill
        listeners.revive()
        if time.monotonic() - last_kill > 3.0 and kills < 12:
            listeners.kill(next(victims))
            kills += 1
            last_kill = time.monotonic()

    have = wait_stored(url, len(frames), 240, tick)
    listeners.revive()
    assert all(gw.done.wait(60) for gw in gateways), "a box still holds unacknowledged events"
    assert have == len(frames) == boxes * per_box
    assert wait_for(lambda: queue_depth(cluster.amqp_urls[0], EVENT_QUEUE) == 0, 60), "the queue stalled"
    assert kills >= 3
    _assert_complete(url, boxes, per_box)
    assert stored_count(url) == boxes * per_box
    assert listeners.redeliveries() > 0, "no redelivery was seen"
    assert '"reason": "malformed"' in listeners.log_text()


def test_a_postgresql_restart_pauses_consumption_and_loses_nothing(centre) -> None:
    cluster, pg, url, pool = centre
    boxes, per_box = 60, 50
    listeners, devices, central = pool(boxes, 2)
    frames = interleave(build_frames(devices, per_box, central.public_key()))
    listeners.start_all()
    assert listeners.wait_ready()
    gateways = run_gateways(cluster.mqtt_urls, frames, 6, rate=400)
    assert wait_stored(url, 400, 60) >= 400
    pg.stop()
    try:
        assert wait_for(lambda: listeners.ready(0) == 503 and listeners.ready(1) == 503, 30), "not paused"
        assert wait_for(lambda: queue_depth(cluster.amqp_urls[0], EVENT_QUEUE) > 0, 30), "the broker holds nothing"
        time.sleep(2)
        assert all(p is not None and p.poll() is None for p in listeners.procs), "a listener died"
    finally:
        pg.start()
    assert wait_for(lambda: listeners.ready(0) == 200 and listeners.ready(1) == 200, 60), "not resumed"
    assert all(gw.done.wait(120) for gw in gateways)
    assert wait_stored(url, len(frames), 120) == len(frames)
    _assert_complete(url, boxes, per_box)


def test_a_broker_node_killed_mid_run_loses_no_event_a_box_had(centre) -> None:
    cluster, _pg, url, pool = centre
    boxes, per_box = 60, 50
    listeners, devices, central = pool(boxes, 2)
    frames = interleave(build_frames(devices, per_box, central.public_key()))
    listeners.start_all()
    assert listeners.wait_ready()
    gateways = run_gateways(cluster.mqtt_urls, frames, 6, rate=400)  # every box starts on node 1
    try:
        assert wait_stored(url, 600, 60) >= 600
        cluster.kill(0)
        assert all(gw.done.wait(180) for gw in gateways), "a box could not deliver after the node died"
        assert any(gw.connections > 1 for gw in gateways), "no box had to reconnect"
        assert wait_stored(url, len(frames), 180) == len(frames)
        _assert_complete(url, boxes, per_box)
    finally:
        for gw in gateways:
            gw.stop()
        cluster.start(0)


def test_a_box_gets_a_signed_receipt_back_over_mqtt_from_a_listener_on_the_cluster(centre) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from idstation.mqtt.receipt import parse_receipt, receipt_topic

    cluster, _pg, url, pool = centre
    listeners, devices, central = pool(1, 1)
    [device] = devices
    receipt_key = load_pem_private_key((listeners.workdir / "receipt_key.pem").read_bytes(), None)
    got: list[bytes] = []
    box = mqtt_client(cluster.mqtt_urls[2], "box-receipts", clean=False)
    box.on_message = lambda _c, _u, msg: got.append(msg.payload)
    box.subscribe(receipt_topic(device.site, device.counter), qos=1)
    listeners.start_all()
    assert listeners.wait_ready()
    frames = interleave(build_frames(devices, 5, central.public_key()))
    for frame in frames:
        box.publish(frame.topic, frame.payload, qos=1).wait_for_publish(10)

    def covered() -> bool:
        receipts = [parse_receipt(p, [receipt_key.public_key()]) for p in list(got)]
        return any(r.upto == 5 for r in receipts)

    try:
        assert wait_for(covered, 60), f"no receipt covering 1..5 (got {len(got)})"
    finally:
        box.disconnect()
    assert wait_stored(url, 5, 30) == 5
