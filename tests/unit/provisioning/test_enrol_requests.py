"""The enrolment service's request handling (sans-IO): every hostile request gets a typed answer.

Regressions from the red-team pass (each crashed ``central enroll --serve``): a nested-JSON request
(RecursionError), a CSR of version 95 (InvalidVersion), a CSR on an unsupported curve
(UnsupportedAlgorithm). Then bounded fuzzing of topics, payloads and mutated CSRs.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.central.enrol_service import EnrolService
from idstation.mqtt.central.enroller import Enroller
from idstation.mqtt.enrolment.csr import verify_csr
from idstation.mqtt.enrolment.protocol import json_depth
from idstation.mqtt.enrolment.session import BrokerAccess
from idstation.provisioning.errors import CsrError
from idstation.provisioning.identity import InitResult

from tests.fixtures.hostile_csr import DEVICE_ID, csr_on_unsupported_curve, csr_with_version

TOPIC = f"idstation/v1/provision/{DEVICE_ID}/request"
_FIXTURES = [HealthCheck.function_scoped_fixture]  # the enroller's state only grows; each example stands alone


def _service(enroller: Enroller) -> EnrolService:
    return EnrolService(enroller, access=BrokerAccess("mqtt://127.0.0.1:1", client_id="test"))  # type: ignore[arg-type]


def _answer(service: EnrolService, payload: bytes, topic: str = TOPIC) -> dict:
    reply = service.handle(topic, payload)
    assert reply is not None
    assert reply[0] == f"idstation/v1/provision/{DEVICE_ID}/response"
    return json.loads(reply[1])


def _enrol_request(csr: bytes) -> bytes:
    doc = {"version": 1, "kind": "enroll", "request_id": "r1", "token": "x" * 22, "csr_pem": csr.decode()}
    return json.dumps(doc).encode()


def test_nested_json_request_is_answered_with_a_reason(enroller: Enroller) -> None:
    answer = _answer(_service(enroller), b"[" * 30_000)  # under the size cap: json.loads would recurse
    assert answer["ok"] is False and answer["error"] == "EnrollError" and "JSON" in answer["message"]
    assert "larger than" in _answer(_service(enroller), b"[" * 100_000)["message"]


def test_nested_json_inside_a_field_is_answered_with_a_reason(enroller: Enroller) -> None:
    payload = b'{"request_id": "r1", "kind": "enroll", "csr_pem": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = _answer(_service(enroller), payload)
    assert answer["ok"] is False and answer["request_id"] is None


@pytest.mark.parametrize(
    ("csr", "reason"),
    [(csr_with_version(95), "version"), (csr_on_unsupported_curve(), "unsupported")],
    ids=["version-95", "unsupported-curve"],
)
def test_hostile_csr_is_answered_as_csr_error(enroller: Enroller, csr: bytes, reason: str) -> None:
    answer = _answer(_service(enroller), _enrol_request(csr))
    assert answer == {
        "version": 1,
        "request_id": "r1",
        "ok": False,
        "error": "CsrError",
        "message": answer["message"],
    }
    assert reason in answer["message"]


def test_hostile_csrs_are_csr_errors_in_the_library() -> None:
    for csr in (csr_with_version(95), csr_with_version(-1), csr_on_unsupported_curve("1.2.3.4")):
        with pytest.raises(CsrError):
            verify_csr(csr)


def test_non_string_fields_and_missing_request_id_are_answered(enroller: Enroller) -> None:
    service = _service(enroller)
    assert _answer(service, json.dumps({"kind": "enroll"}).encode())["message"].startswith("request carries no")
    answer = _answer(service, json.dumps({"request_id": "r", "kind": "enroll", "csr_pem": 7}).encode())
    assert answer["ok"] is False and "csr_pem" in answer["message"]


def test_after_hostile_requests_a_genuine_enrolment_succeeds(enroller: Enroller, box: InitResult) -> None:
    service = _service(enroller)
    for payload in (b"[" * 100_000, _enrol_request(csr_with_version(95)), _enrol_request(csr_on_unsupported_curve())):
        assert _answer(service, payload)["ok"] is False
    enroller.expect(box.pairing)
    csr = (box.device.identity_dir / "device.csr").read_text()
    request = {"version": 1, "kind": "enroll", "request_id": "ok", "token": box.pairing.token, "csr_pem": csr}
    topic = f"idstation/v1/provision/{box.device.device_id}/request"
    reply = service.handle(topic, json.dumps(request).encode())
    assert reply is not None and json.loads(reply[1])["ok"] is True


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert json_depth('"\\"[["') == 0


# ---- fuzzing (bounded: a few hundred examples in all) ----------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
_json = st.recursive(
    _scalar,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["version", "kind", "request_id", "device_id", "token", "site", "counter", "csr_pem"])


@settings(max_examples=150, suppress_health_check=_FIXTURES)
@given(doc=st.dictionaries(_keys, _json, max_size=8))
def test_fuzz_request_documents_are_always_answered(enroller: Enroller, doc: dict) -> None:
    answer = _answer(_service(enroller), json.dumps(doc).encode())
    assert answer["ok"] is False or answer.get("pong") is True
    assert answer["ok"] is True or isinstance(answer["message"], str)


@settings(max_examples=150, suppress_health_check=_FIXTURES)
@given(payload=st.binary(max_size=2000), nest=st.integers(0, 3000))
def test_fuzz_raw_payloads_are_always_answered(enroller: Enroller, payload: bytes, nest: int) -> None:
    answer = _answer(_service(enroller), b"{" * nest + payload)
    assert answer["ok"] is False or answer.get("pong") is True


@settings(max_examples=100, suppress_health_check=_FIXTURES)
@given(data=st.data())
def test_fuzz_mutated_csrs_are_answered_as_refusals(enroller: Enroller, box: InitResult, data: st.DataObject) -> None:
    csr = bytearray((box.device.identity_dir / "device.csr").read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(csr) - 1))
        csr[at] = data.draw(st.integers(0x20, 0x7E))
    request = {"version": 1, "kind": data.draw(st.sampled_from(["enroll", "renew"])), "request_id": "f"}
    request.update(token=box.pairing.token, csr_pem=csr.decode("ascii"))
    topic = f"idstation/v1/provision/{box.device.device_id}/request"
    reply = _service(enroller).handle(topic, json.dumps(request).encode())
    assert reply is not None
    answer = json.loads(reply[1])
    assert answer["ok"] is False and answer["error"] in {"CsrError", "TokenError", "EnrollError"}


@settings(max_examples=100)
@given(topic=st.text(max_size=80))
def test_fuzz_topics_never_raise(topic: str) -> None:
    service = EnrolService.__new__(EnrolService)  # handle() needs no broker for a topic it ignores
    if not topic.startswith("idstation/v1/provision/ids-"):
        assert service.handle(topic, b"{}") is None
