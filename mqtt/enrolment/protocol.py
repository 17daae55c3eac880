"""The online enrolment protocol over MQTT request/response topics (box and centre both speak it).

Topics (the claim credential's broker ACL allows only these)::

    idstation/v1/provision/<device_id>/request    box → central   (claim user: write only)
    idstation/v1/provision/<device_id>/response   central → box   (claim user: read only)

Request (JSON): ``{"version": 1, "kind": "enroll" | "renew" | "ping", "request_id", "device_id",
"site", "counter", "token" (enroll), "csr_pem"}``. Response: ``{"version": 1, "request_id", "ok": true,
"bundle": <bundle JSON>}`` (``"pong": true`` for a ping) or ``{"version": 1, "request_id", "ok": false,
"error": <class>, "message"}``. The box side is ``idstation.provisioning.enroll``, the centre's
``idstation.mqtt.central.enrol_service``.
"""

from __future__ import annotations

import re
from typing import Any

from idstation.mqtt.enrolment import errors
from idstation.mqtt.errors import SealError
from idstation.mqtt.seal import json_depth as seal_json_depth
from idstation.mqtt.seal import loads_bounded

__all__ = [
    "DEVICE_RE",
    "ERRORS",
    "MAX_DEPTH",
    "MAX_REQUEST",
    "PREFIX",
    "REQUEST_FILTER",
    "json_depth",
    "parse_json",
    "request_topic",
    "response_topic",
]

PREFIX = "idstation/v1/provision"
REQUEST_FILTER = f"{PREFIX}/+/request"
MAX_REQUEST = 32 * 1024
MAX_DEPTH = 8  # a request is a flat object; a bundle nests one level
DEVICE_RE = re.compile(r"ids-[0-9a-f]{16}")
ERRORS: dict[str, type[errors.ProvisioningError]] = {
    "TokenError": errors.TokenError,
    "CsrError": errors.CsrError,
    "EnrollError": errors.EnrollError,
    "BundleError": errors.BundleError,
}


def request_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/request"


def response_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/response"


def parse_json(data: bytes) -> dict[str, Any] | None:
    """A JSON object of bounded size and nesting depth, or None (``seal.loads_bounded``: checked before
    the parser recurses; NaN and duplicate keys refused)."""
    try:
        doc = loads_bounded(data, max_bytes=MAX_REQUEST * 4, max_depth=MAX_DEPTH, what="enrolment message")
    except SealError:
        return None
    return doc if isinstance(doc, dict) else None


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in JSON ``text`` (strings skipped; ``seal.json_depth``)."""
    return seal_json_depth(text.encode("utf-8"))
