"""Broker URLs, topics, reconnect backoff: the small contracts of the MQTT driver."""

from __future__ import annotations

import random

import pytest
from idstation.mqtt.connection import Backoff, TlsOptions, parse_broker_url
from idstation.mqtt.errors import EventRejected, PublishError
from idstation.mqtt.topics import parse_topic, shared_subscription, topic_for


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://127.0.0.1:1884", "127.0.0.1", 1884, False),
        ("mqtt://broker", "broker", 1883, False),
        ("mqtts://broker.example", "broker.example", 8883, True),
        ("mqtts://[::1]:9000", "::1", 9000, True),
    ],
)
def test_broker_urls(url: str, host: str, port: int, tls: bool) -> None:
    parsed = parse_broker_url(url)
    assert (parsed.host, parsed.port, parsed.tls) == (host, port, tls)


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "tcp://host:1883", "mqtt://host:99999", "broker:1883"])
def test_bad_broker_urls_are_publish_errors(url: str) -> None:
    with pytest.raises(PublishError):
        parse_broker_url(url)


def test_backoff_grows_with_jitter_and_stays_capped() -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(40)]
    assert all(0.125 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 30  # jittered: devices do not reconnect in lockstep
    assert max(delays[10:]) > max(delays[:2])
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_a_missing_ca_file_is_a_publish_error(tmp_path) -> None:
    with pytest.raises(PublishError, match="CA"):
        TlsOptions(ca_file=str(tmp_path / "missing.crt")).context()


def test_topics_round_trip_and_reject_wildcards() -> None:
    assert topic_for("hn-01", "c01", "identity") == "idstation/v1/hn-01/c01/identity"
    assert parse_topic("idstation/v1/hn-01/c01/heartbeat") == ("hn-01", "c01", "heartbeat")
    assert shared_subscription("g1") == "$share/g1/idstation/v1/+/+/+"
    for bad in ("idstation/v1/+/c01/identity", "idstation/v1/a/b/c/identity", "idstation/v2/a/b/identity"):
        with pytest.raises(EventRejected):
            parse_topic(bad)
    with pytest.raises(TypeError):
        topic_for("a/b", "c", "identity")
    with pytest.raises(TypeError):
        topic_for("a", "c", "photo")
