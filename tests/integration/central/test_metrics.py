"""A listener's Prometheus endpoint: counts what the listener reports, carries no personal data,
and /ready names the failing check."""

from __future__ import annotations

import httpx
import pytest
from idstation.mqtt.central.listener import AcceptedEvent
from idstation.mqtt.central.metrics import ListenerMetrics, MetricsServer, parse_listen_address
from idstation.mqtt.errors import EventRejected

pytestmark = pytest.mark.integration

CITIZEN = {"id_number": "079203004512", "full_name": "Trần Thị Hoàng Yến", "date_of_birth": "12/03/2003"}


def _event(kind: str, seq: int) -> AcceptedEvent:
    header = {
        "event_id": f"ev-{seq}",
        "device_id": "box-1",
        "key_id": "ed25519:0011223344556677",
        "site": "hn01",
        "counter_id": "c1",
        "kind": kind,
        "seq": seq,
        "created_at": "2026-01-01T00:00:00Z",
        "clock_synced": True,
    }
    return AcceptedEvent(header, "idstation/v1/hn01/c1/" + kind, {"citizen": CITIZEN}, None, 0.0)


@pytest.fixture
def served():
    metrics = ListenerMetrics()
    state = {"store": True, "broker": True}
    server = MetricsServer(
        metrics, ("127.0.0.1", 0), {"store": lambda: state["store"], "broker": lambda: state["broker"]}
    ).start()
    yield metrics, server, state
    server.stop()


def test_the_endpoint_counts_accepted_rejected_and_duplicates_without_personal_data(served) -> None:
    metrics, server, _state = served
    for seq in range(1, 4):
        metrics.on_event(_event("identity", seq))
    metrics.on_event(_event("heartbeat", 0))
    metrics.on_reject("idstation/v1/hn01/c1/identity", EventRejected("duplicate", "event already received"))
    metrics.on_reject("idstation/v1/hn01/c1/identity", EventRejected("bad_signature", "bad signature"))
    metrics.on_batch(4, 0.012)
    metrics.on_receipts(1, 0.05)
    metrics.on_receipt("box-1", "ed25519:0011223344556677", 3, 0)  # box-1's streams owed one since on_event
    metrics.track_open_gaps(lambda: 7)
    body = httpx.get(f"http://127.0.0.1:{server.address[1]}/metrics", timeout=10).text
    assert 'idstation_events_accepted_total{kind="identity"} 3.0' in body
    assert 'idstation_events_accepted_total{kind="heartbeat"} 1.0' in body
    assert 'idstation_events_rejected_total{reason="bad_signature"} 1.0' in body
    assert "idstation_events_duplicate_total 1.0" in body
    assert "idstation_receipts_published_total 2.0" in body
    assert "idstation_receipt_lag_seconds_count 2.0" in body
    assert "idstation_sequence_gaps_open 7.0" in body
    assert "idstation_store_commit_seconds_count 1.0" in body
    assert "idstation_event_age_seconds_count 4.0" in body
    for value in CITIZEN.values():
        assert value not in body
    assert "ev-1" not in body and "box-1" not in body and "ed25519" not in body  # no unbounded labels


def test_ready_is_200_when_store_and_broker_answer_and_503_naming_the_failing_check(served) -> None:
    _metrics, server, state = served
    url = f"http://127.0.0.1:{server.address[1]}/ready"
    assert httpx.get(url, timeout=10).status_code == 200
    state["store"] = False
    response = httpx.get(url, timeout=10)
    assert response.status_code == 503
    assert "store" in response.text and "broker" not in response.text
    body = httpx.get(f"http://127.0.0.1:{server.address[1]}/metrics", timeout=10).text
    assert "idstation_listener_ready 0.0" in body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9464", ("127.0.0.1", 9464)),
        (":9100", ("127.0.0.1", 9100)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_a_metrics_address_defaults_to_loopback(text, expected) -> None:
    assert parse_listen_address(text) == expected
