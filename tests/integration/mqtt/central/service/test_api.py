"""The service's HTTP contract over a real store: authorisation, disclosure, audit, freshness, streams."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from idstation.mqtt.central.service.auth import FailureLimiter

from tests.integration.mqtt.central.service.centre import FACE, PERSONAL, Centre, auth, citizen, read_sse, sse_lines

pytestmark = pytest.mark.integration

LATEST = "/v1/counters/hn-01/c01/identities/latest"
STREAM = "/v1/counters/hn-01/c01/stream"


def test_requests_without_a_token_or_with_an_unknown_one_get_401(centre: Centre, serve: Callable[..., str]) -> None:
    url = serve()
    for path in (LATEST, STREAM, "/v1/fleet"):
        assert httpx.get(url + path).status_code == 401
        response = httpx.get(url + path, headers=auth("not-a-token"))
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_counter_client_never_reads_another_counter(centre: Centre, serve: Callable[..., str]) -> None:
    centre.box("box-2", counter="c02").identity()
    url = serve()
    for path in ("/v1/counters/hn-01/c02/identities/latest", "/v1/counters/hn-01/c02/stream"):
        assert httpx.get(url + path, headers=auth(centre.tokens["c01"])).status_code == 403
    assert centre.audit() == []


def test_an_operator_never_reads_identities(centre: Centre, serve: Callable[..., str]) -> None:
    centre.box("box-1").identity()
    url = serve()
    for path in (LATEST, STREAM):
        assert httpx.get(url + path, headers=auth(centre.tokens["operator"])).status_code == 403


LISTEN_KEYS = {
    "event_id", "device_id", "site", "counter_id", "boot_id", "seq", "kind", "created_at", "clock_synced",
    "key_id", "received_at", "citizen", "verification", "source", "access", "qr", "has_face",
}  # fmt: skip


def test_latest_is_the_listen_json_object_decrypted(centre: Centre, serve: Callable[..., str]) -> None:
    box = centre.box("box-1")
    box.identity(citizen(1))
    event_id = box.identity()
    url = serve()
    response = httpx.get(url + LATEST, headers=auth(centre.tokens["c01"]))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == LISTEN_KEYS  # exactly the keys of a `central listen --json` identity line
    assert body["event_id"] == event_id and body["kind"] == "identity"
    assert body["device_id"] == "box-1" and body["site"] == "hn-01" and body["counter_id"] == "c01"
    assert body["citizen"]["full_name"] == "Nguyễn Thị Thuỳ Dương"
    assert body["verification"]["status"] == "verified" and body["source"] == "chip"
    assert body["has_face"] is True
    with_face = httpx.get(url + LATEST + "?face=1", headers=auth(centre.tokens["c01"])).json()
    assert with_face == {**body, "face": FACE}  # the clerk's page asks for the photo too


def test_the_freshness_window_hides_the_previous_citizen(centre: Centre, serve: Callable[..., str]) -> None:
    box = centre.box("box-1")
    box.identity(received_at=time.time() - 601)
    url = serve(freshness_s=600)
    assert httpx.get(url + LATEST, headers=auth(centre.tokens["c01"])).status_code == 404
    box.identity()
    assert httpx.get(url + LATEST, headers=auth(centre.tokens["c01"])).status_code == 200
    later = serve(freshness_s=600, clock=lambda: time.time() + 601)
    assert httpx.get(later + LATEST, headers=auth(centre.tokens["c01"])).status_code == 404


def test_the_audit_holds_one_entry_per_disclosure_and_no_personal_data(
    centre: Centre, serve: Callable[..., str]
) -> None:
    box = centre.box("box-1")
    url = serve()
    first = box.identity()
    for _ in range(2):
        assert httpx.get(url + LATEST, headers=auth(centre.tokens["c01"])).status_code == 200
    with httpx.stream("GET", url + STREAM, headers=auth(centre.tokens["c01"]), timeout=10) as response:
        sent = [box.identity(citizen(1)), box.read_failed(), box.identity(citizen(2))]
        got = read_sse(response, 3)
    assert [e["json"]["event_id"] for e in got] == sent
    audit = centre.audit()
    assert [(a["client"], a["event_id"]) for a in audit] == [
        ("clerk-c01", first),
        ("clerk-c01", first),
        ("clerk-c01", sent[0]),
        ("clerk-c01", sent[2]),
    ]
    assert {a["endpoint"] for a in audit} == {LATEST, STREAM}
    text = json.dumps(audit, ensure_ascii=False)
    assert not any(p in text for p in PERSONAL)


def test_the_stream_sends_each_event_with_its_kind_and_cursor(centre: Centre, serve: Callable[..., str]) -> None:
    box = centre.box("box-1")
    other = centre.box("box-2", counter="c02")
    old = box.identity()  # before the stream opened: not replayed
    url = serve()
    with httpx.stream("GET", url + STREAM, headers=auth(centre.tokens["c01"]), timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        other.identity()
        a = box.read_failed("qr_not_visible")
        box.status("online", {"outbox": {"depth": 1}})  # telemetry is not streamed
        b = box.identity(citizen(3))
        got = read_sse(response, 2)
    assert [e["event"] for e in got] == ["read_failed", "identity"]
    assert [e["json"]["event_id"] for e in got] == [a, b]
    assert old not in (a, b)
    assert got[0]["json"]["reason"] == "qr_not_visible"
    assert got[1]["json"]["citizen"]["full_name"] == "Trần Văn Số 3"
    assert int(got[0]["id"]) < int(got[1]["id"])


def test_a_reconnecting_client_with_last_event_id_misses_nothing_and_repeats_nothing(
    centre: Centre, serve: Callable[..., str]
) -> None:
    box = centre.box("box-1")
    url = serve()
    headers = auth(centre.tokens["c01"])
    with httpx.stream("GET", url + STREAM, headers=headers, timeout=10) as response:
        sent = [box.identity(citizen(i)) for i in range(3)]
        first = read_sse(response, 2)
    sent += [box.identity(citizen(i)) if i % 2 else box.read_failed() for i in range(3, 7)]
    resume = {**headers, "Last-Event-ID": first[-1]["id"]}
    with httpx.stream("GET", url + STREAM, headers=resume, timeout=10) as response:
        rest = read_sse(response, 5)
    assert [e["json"]["event_id"] for e in first + rest] == sent


def test_removing_a_client_ends_its_open_stream(centre: Centre, serve: Callable[..., str]) -> None:
    box = centre.box("box-1")
    url = serve()
    with httpx.stream("GET", url + STREAM, headers=auth(centre.tokens["c01"]), timeout=10) as response:
        box.identity()
        read_sse(response, 1)
        assert centre.clients.remove("clerk-c01")
        box.identity(citizen(2))
        rest = list(sse_lines(response))  # ends: the server closed the stream
    assert not any(line.startswith("data:") for line in rest)
    assert httpx.get(url + STREAM, headers=auth(centre.tokens["c01"])).status_code == 401


def test_a_stream_that_falls_behind_catches_up_without_loss_or_repeats(
    centre: Centre, serve: Callable[..., str]
) -> None:
    box = centre.box("box-1")
    url = serve(stream_queue=2)  # the instance's poller hands over at most 2 waiting events per stream
    with httpx.stream("GET", url + STREAM, headers=auth(centre.tokens["c01"]), timeout=10) as response:
        sent = box.batch(12)
        got = read_sse(response, 12)
    assert [e["json"]["event_id"] for e in got] == sent


def test_two_instances_over_one_store_each_stream_every_event(centre: Centre, serve: Callable[..., str]) -> None:
    box = centre.box("box-1")
    first, second = serve(), serve()
    headers = auth(centre.tokens["c01"])
    with (
        httpx.stream("GET", first + STREAM, headers=headers, timeout=10) as a,
        httpx.stream("GET", second + STREAM, headers=headers, timeout=10) as b,
    ):
        sent = [box.identity(citizen(i)) for i in range(3)]
        got_a, got_b = read_sse(a, 3), read_sse(b, 3)
    assert [e["json"]["event_id"] for e in got_a] == sent == [e["json"]["event_id"] for e in got_b]
    assert len(centre.audit()) == 6  # each instance audits what it disclosed


def test_a_malformed_last_event_id_is_refused(centre: Centre, serve: Callable[..., str]) -> None:
    url = serve()
    headers = {**auth(centre.tokens["c01"]), "Last-Event-ID": "abc"}
    assert httpx.get(url + STREAM, headers=headers).status_code == 400


def test_failed_attempts_are_limited_per_address(centre: Centre, serve: Callable[..., str]) -> None:
    url = serve(limiter=FailureLimiter(limit=5, window_s=60))
    codes = [httpx.get(url + "/v1/fleet", headers=auth(f"guess-{i}")).status_code for i in range(7)]
    assert codes == [401] * 5 + [429] * 2
    blocked = httpx.get(url + "/v1/fleet", headers=auth(centre.tokens["operator"]))
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0


def test_healthz_needs_no_token_and_reports_the_store(centre: Centre, serve: Callable[..., str]) -> None:
    response = httpx.get(serve() + "/healthz")
    assert response.status_code == 200 and response.json()["ok"] is True


def test_healthz_and_the_api_answer_503_while_the_store_is_down(
    centre: Centre, serve: Callable[..., str], request: pytest.FixtureRequest
) -> None:
    if not centre.store_url.startswith("postgresql"):
        pytest.skip("a SQLite file cannot be taken down")
    server = request.getfixturevalue("postgres_server")
    url = serve()
    server.stop()
    try:
        assert httpx.get(url + "/healthz", timeout=30).status_code == 503
        down = httpx.get(url + LATEST, headers=auth(centre.tokens["c01"]), timeout=30)
        assert down.status_code == 503 and "retry-after" in down.headers
    finally:
        server.start()
    assert httpx.get(url + "/healthz", timeout=30).status_code == 200


def test_a_counter_outside_the_one_name_rule_is_no_counter(centre: Centre, serve: Callable[..., str]) -> None:
    """Sites and counters are 1-64 (pairing.valid_name) here too: a 65-character counter, even bound in a
    clients file an older ``add-client`` wrote, is "no such counter" (404), never read."""
    long_counter, longest = "c" * 65, "c" * 64
    doc = json.loads(centre.clients_path.read_text())
    doc["clients"][0]["counters"].append(f"hn-01/{long_counter}")
    centre.clients_path.write_text(json.dumps(doc))
    url = serve()
    for path in (f"/v1/counters/hn-01/{long_counter}/identities/latest", f"/v1/counters/hn-01/{long_counter}/stream"):
        response = httpx.get(url + path, headers=auth(centre.tokens["c01"]))
        assert (response.status_code, response.json()["error"]) == (404, "no such counter")
    assert httpx.get(url + f"/counter/hn-01/{long_counter}").status_code == 404
    assert httpx.get(url + f"/counter/hn-01/{longest}").status_code == 200
    assert centre.audit() == []
