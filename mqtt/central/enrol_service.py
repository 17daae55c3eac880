"""Online enrolment, the centre's side: ``EnrolService`` answers requests with the ``Enroller``.

The protocol is ``idstation.mqtt.enrolment.protocol`` (request/response topics and documents).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import structlog
from idstation.mqtt.central.enroller import Enroller
from idstation.mqtt.enrolment import errors
from idstation.mqtt.enrolment.protocol import (
    DEVICE_RE,
    MAX_DEPTH,
    MAX_REQUEST,
    REQUEST_FILTER,
    parse_json,
    response_topic,
)
from idstation.mqtt.enrolment.session import BrokerAccess, MqttSession

__all__ = ["EnrolService"]

log = structlog.get_logger(__name__)


class EnrolService:
    """The central side of online enrolment: answers requests with the ``Enroller``."""

    def __init__(self, enroller: Enroller, access: BrokerAccess) -> None:
        self.enroller = enroller
        self.access = access.with_client_id(f"idstation-enrol-{uuid.uuid4().hex[:8]}")
        self.handled = 0  # enrol/renew requests answered (pings not counted)
        self.pings = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def handle(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        """One request → (response topic, response payload), or None when the topic names no device.

        Every request on a device's request topic is answered: the bundle, or ``ok: false`` with
        the error class and a reason (the request id is echoed when it is a string, else null).
        """
        parts = topic.split("/")
        if len(parts) != 5 or parts[4] != "request" or not DEVICE_RE.fullmatch(parts[3]):
            return None
        device_id = parts[3]
        answer: dict[str, Any] = {"version": 1, "request_id": None}
        try:
            request = self._request(payload)
            answer["request_id"] = request["request_id"][:64]
            if request.get("kind") == "ping":  # liveness probe: is an enrolment service listening?
                answer.update(ok=True, pong=True)
                self.pings += 1
            else:
                answer.update(ok=True, bundle=json.loads(self._answer(device_id, request)))
        except errors.ProvisioningError as exc:
            answer.update(ok=False, error=type(exc).__name__, message=str(exc)[:300])
            log.warning("enrol_request_refused", device_id=device_id, error=type(exc).__name__, reason=str(exc)[:300])
        except OSError as exc:  # the CA directory or the registry could not be written
            answer.update(ok=False, error="EnrollError", message="the enrolment service cannot store its state")
            log.error("enrol_state_unwritable", device_id=device_id, error=type(exc).__name__)
        return response_topic(device_id), json.dumps(answer).encode("utf-8")

    @staticmethod
    def _request(payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_REQUEST:
            raise errors.EnrollError(f"request larger than {MAX_REQUEST} bytes")
        request = parse_json(payload)
        if request is None:
            raise errors.EnrollError(f"request is not a JSON object (at most {MAX_DEPTH} levels deep)")
        if not isinstance(request.get("request_id"), str):
            raise errors.EnrollError("request carries no request_id string")
        for name in ("kind", "token", "site", "counter", "csr_pem"):
            if name in request and not isinstance(request[name], str):
                raise errors.EnrollError(f"request field {name!r} must be a string")
        return request

    def _answer(self, device_id: str, request: dict[str, Any]) -> bytes:
        csr_text = request.get("csr_pem", "")
        if not csr_text.isascii():
            raise errors.CsrError("CSR is not ASCII PEM")
        csr = csr_text.encode("ascii")
        kind = request.get("kind")
        if kind == "enroll":
            token = request.get("token")
            if not isinstance(token, str):
                raise errors.TokenError("request carries no pairing token")
            bundle = self.enroller.enroll(
                csr,
                token=token,
                site=_opt_str(request.get("site")),
                counter=_opt_str(request.get("counter")),
                device_id=device_id,
            )
        elif kind == "renew":
            bundle = self.enroller.renew(csr, device_id=device_id)
        else:
            raise errors.EnrollError("unknown request kind")
        return bundle.to_bytes()

    def serve(self, *, max_requests: int | None = None, duration: float | None = None) -> int:
        """Answer requests until ``stop()``, ``max_requests`` answered or ``duration`` seconds pass."""
        deadline = None if duration is None else time.monotonic() + duration
        with MqttSession(self.access) as session:
            session.subscribe(REQUEST_FILTER)
            self._ready.set()
            log.info("enrol_service_ready", broker=self.access.url)
            while not self._stop.is_set():
                if max_requests is not None and self.handled >= max_requests:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                message = session.receive(0.2)
                if message is None:
                    continue
                pings = self.pings
                reply = self._handle_one(*message)
                if reply is not None:
                    session.publish(*reply)
                    self.handled += 1 if self.pings == pings else 0
        return self.handled

    def _handle_one(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        """The service loop's supervisor: a bug in one request is logged and answered, never fatal."""
        try:
            return self.handle(topic, payload)
        except Exception as exc:  # supervisor: the next request must still be served
            log.error("enrol_request_failed", error=type(exc).__name__)
            parts = topic.split("/")
            if len(parts) != 5 or not DEVICE_RE.fullmatch(parts[3]):
                return None
            answer = {"version": 1, "request_id": None, "ok": False, "error": "EnrollError"}
            answer["message"] = "internal error"
            return response_topic(parts[3]), json.dumps(answer).encode("utf-8")

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; returns once subscribed (BrokerError otherwise)."""

        def run() -> None:
            try:
                self.serve()
            except BaseException as exc:  # handed to start()/stop() callers
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name="enrol-service", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise errors.BrokerError(f"enrolment service did not start: {self._error or 'timeout'}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
