"""Online enrolment, the box's side: publish a request with the pairing token and install the answer.

The protocol (topics, request and response documents) is ``idstation.mqtt.enrolment.protocol``; the
box subscribes to its response topic before it publishes, ignores responses to other requests, and
installs the bundle with ``apply_bundle`` (all of the bundle's checks apply).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import structlog
from idstation.mqtt.enrolment import errors
from idstation.mqtt.enrolment.protocol import ERRORS, parse_json, request_topic, response_topic
from idstation.mqtt.enrolment.session import BrokerAccess, MqttSession
from idstation.provisioning.bundle import apply_bundle
from idstation.provisioning.identity import CSR_FILE, DeviceIdentity, load_device, pairing_code

__all__ = ["enroll_online", "exchange"]

log = structlog.get_logger(__name__)


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
            answer = parse_json(message[1])
            if answer is None or answer.get("request_id") != request_id:
                continue
            if answer.get("ok") is True and isinstance(answer.get("bundle"), dict):
                return json.dumps(answer["bundle"]).encode("utf-8")
            error = ERRORS.get(str(answer.get("error")), errors.EnrollError)
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
    access = access.with_client_id(f"{device.device_id}-claim")
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
