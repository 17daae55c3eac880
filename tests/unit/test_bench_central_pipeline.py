"""bench/central.py's drain figures from the listeners' own /metrics: what a listener's pipeline
did between the window's opening and closing scrapes, summed over the listeners (a real
MetricsServer on loopback)."""

from __future__ import annotations

from idstation.mqtt.central.intake import WAITS
from idstation.mqtt.central.metrics import ListenerMetrics, MetricsServer

from bench.central_pipeline import PipelineScrape, free_port


def _listener() -> tuple[ListenerMetrics, dict, MetricsServer]:
    metrics, waited = ListenerMetrics(), dict.fromkeys(WAITS, 0.0)
    metrics.track_waits(waited)
    server = MetricsServer(metrics, ("127.0.0.1", 0), {}).start()
    return metrics, waited, server


def test_the_window_reports_what_the_listeners_did_inside_it_only() -> None:
    one, two = _listener(), _listener()
    try:
        for metrics, waited, _server in (one, two):  # before the window: not counted
            metrics.on_batch(50, 0.5)
            waited["check", "deliveries"] += 9.0
        scrape = PipelineScrape([one[2].address[1], two[2].address[1]])
        scrape.open()
        for metrics, waited, _server in (one, two):
            metrics.on_batch(200, 0.04)
            metrics.on_batch(100, 0.02)
            metrics.on_receipts(3)
            waited["check", "commit"] += 0.25
            waited["commit", "check"] += 0.5
        figures = scrape.close()
    finally:
        one[2].stop()
        two[2].stop()
    assert figures["commits"] == 4 and figures["events_per_commit"] == 150.0
    assert figures["commit_ms_mean"] == 30.0 and figures["receipts"] == 6
    assert figures["wait_s"] == {"check/commit": 0.5, "check/deliveries": 0.0, "commit/check": 1.0}


def test_a_listener_that_does_not_answer_adds_nothing() -> None:
    scrape = PipelineScrape([free_port()])
    scrape.open()
    assert scrape.close() == {
        "commits": 0, "events_per_commit": None, "commit_ms_mean": None, "receipts": 0, "wait_s": {}
    }  # fmt: skip


def test_the_hosts_stolen_time_only_grows() -> None:
    from bench.central_pipeline import stolen_s

    first = stolen_s()
    assert first >= 0.0 and stolen_s() >= first
