"""Hostile input to the parsers gives our typed errors, never a foreign exception."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.mqtt.central.enrol_service import EnrolService
from idstation.mqtt.enrolment.csr import verify_csr
from idstation.mqtt.enrolment.session import BrokerAccess
from idstation.provisioning.bundle import parse_bundle
from idstation.provisioning.errors import BundleError, CsrError

_field = st.one_of(st.text(max_size=50), st.integers(), st.none(), st.lists(st.integers(), max_size=3))


@given(st.binary(max_size=600))
def test_csr_garbage_is_csr_error(data: bytes) -> None:
    with contextlib.suppress(CsrError):
        verify_csr(data)


@given(st.binary(max_size=600))
def test_pem_wrapped_garbage_is_csr_error(data: bytes) -> None:
    import base64

    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(data) + b"-----END CERTIFICATE REQUEST-----\n"
    with contextlib.suppress(CsrError):
        verify_csr(pem)


@given(st.dictionaries(st.sampled_from(["format", "device_id", "certificate_pem", "signature", "x"]), _field))
def test_bundle_shaped_garbage_is_bundle_error(doc: dict) -> None:
    with contextlib.suppress(BundleError):
        parse_bundle(json.dumps(doc).encode())


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])  # enroller is stateless here
@given(st.dictionaries(st.sampled_from(["kind", "request_id", "csr_pem", "token", "site"]), _field))
def test_enrol_service_answers_or_ignores_garbage(enroller, doc: dict) -> None:
    service = EnrolService(enroller, access=BrokerAccess("mqtt://127.0.0.1:1", client_id="test"))
    reply = service.handle("idstation/v1/provision/ids-0123456789abcdef/request", json.dumps(doc).encode())
    if reply is not None:
        answer = json.loads(reply[1])
        assert answer["ok"] is False or answer.get("pong") is True


class _NoBroker:
    url = "mqtt://127.0.0.1:1"
    client_id = "test"
