"""Online enrolment over MQTT request/response topics.

Topics (the claim credential's broker ACL allows only these)::

    idstation/v1/provision/<device_id>/request    box → central   (claim user: write only)
    idstation/v1/provision/<device_id>/response   central → box   (claim user: read only)

Request (JSON): ``{"version": 1, "kind": "enroll" | "renew" | "ping", "request_id", "device_id",
"site", "counter", "token" (enroll), "csr_pem"}``. Response: ``{"version": 1, "request_id", "ok": true,
"bundle": <bundle JSON>}`` (``"pong": true`` for a ping) or ``{"version": 1, "request_id", "ok": false,
"error": <class>, "message"}``. The box subscribes to its response topic before it publishes, ignores responses to
other requests, and installs the bundle with ``apply_bundle`` (all of the bundle's checks apply).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import structlog
from idstation.mqtt.central.enroller import Enroller
from idstation.provisioning import errors
from idstation.provisioning.bundle import apply_bundle
from idstation.provisioning.identity import CSR_FILE, DeviceIdentity, load_device, pairing_code
from idstation.provisioning.mqttio import BrokerAccess, MqttSession

log = structlog.get_logger(__name__)

PREFIX = "idstation/v1/provision"
REQUEST_FILTER = f"{PREFIX}/+/request"
MAX_REQUEST = 32 * 1024
MAX_DEPTH = 8  # a request is a flat object; a bundle nests one level
_DEVICE_RE = re.compile(r"ids-[0-9a-f]{16}")
_ERRORS: dict[str, type[errors.ProvisioningError]] = {
    "TokenError": errors.TokenError,
    "CsrError": errors.CsrError,
    "EnrollError": errors.EnrollError,
    "BundleError": errors.BundleError,
}


def request_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/request"


def response_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/response"


def exchange(access: BrokerAccess, device_id: str, request: dict[str, Any], *, timeout: float) -> bytes:
    """Publish one request and wait for its response; returns the bundle JSON bytes."""
    request_id = str(uuid.uuid4())
    payload = json.dumps({"version": 1, "request_id": request_id, "device_id": device_id, **request}).encode()
    deadline = time.monotonic() + timeout
    with MqttSession(access, timeout=min(timeout, 15.0)) as session:
        session.subscribe(response_topic(device_id))
        session.publish(request_topic(device_id), payload)
        while (left := deadline - time.monotonic()) > 0:
            message = session.receive(min(left, 1.0))
            if message is None:
                continue
            answer = _parse_json(message[1])
            if answer is None or answer.get("request_id") != request_id:
                continue
            if answer.get("ok") is True and isinstance(answer.get("bundle"), dict):
                return json.dumps(answer["bundle"]).encode("utf-8")
            error = _ERRORS.get(str(answer.get("error")), errors.EnrollError)
            raise error(f"enrolment refused: {str(answer.get('message', 'no reason given'))[:200]}")
    raise errors.EnrollError(f"no answer from the enrolment service within {timeout:.0f} s")


def enroll_online(
    state_dir: Path | str, access: BrokerAccess, *, timeout: float = 30.0, fleet_ca_fingerprint: str | None = None
) -> DeviceIdentity:
    """Enrol this box with its pairing token and install the answer atomically.

    The answer is a bundle like an offline one: it must come from the fleet CA confirmed at
    ``provision init`` (or ``fleet_ca_fingerprint``, confirmed now).
    """
    device = load_device(state_dir)
    code = pairing_code(device)
    access = _with_client_id(access, f"{device.device_id}-claim")
    request = {
        "kind": "enroll",
        "site": device.site,
        "counter": device.counter,
        "token": code.token,
        "csr_pem": (device.identity_dir / CSR_FILE).read_text(encoding="ascii"),
    }
    bundle = exchange(access, device.device_id, request, timeout=timeout)
    identity = apply_bundle(state_dir, bundle, fleet_ca_fingerprint=fleet_ca_fingerprint)
    log.info("enrolled_online", device_id=identity.device_id, site=identity.site, counter=identity.counter)
    return identity


def _with_client_id(access: BrokerAccess, client_id: str) -> BrokerAccess:
    if access.client_id:
        return access
    return BrokerAccess(
        access.url, access.username, access.password, access.ca_file, access.cert_file, access.key_file, client_id
    )


def _parse_json(data: bytes) -> dict[str, Any] | None:
    """A JSON object of bounded size and nesting depth, or None (checked before json.loads recurses)."""
    if len(data) > MAX_REQUEST * 4:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if json_depth(text) > MAX_DEPTH:
        return None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in JSON ``text`` (linear; brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class EnrolService:
    """The central side of online enrolment: answers requests with the ``Enroller``."""

    def __init__(self, enroller: Enroller, access: BrokerAccess) -> None:
        self.enroller = enroller
        self.access = _with_client_id(access, f"idstation-enrol-{uuid.uuid4().hex[:8]}")
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
        if len(parts) != 5 or parts[4] != "request" or not _DEVICE_RE.fullmatch(parts[3]):
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
        request = _parse_json(payload)
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
            if len(parts) != 5 or not _DEVICE_RE.fullmatch(parts[3]):
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
