"""The pairing code: what the box shows (as a QR code) so the central side can expect it.

Text form (one line, ASCII, fits a version-6 QR code)::

    IDSPAIR:1:<device_id>:<site>:<counter>:<token>:<tls_fp32>

``token`` is a one-time secret (128 random bits, base64url) made at ``provision init``; the
central side stores only its SHA-256. The device id (derived from the Ed25519 signing key) and
``tls_fp32`` (first 32 hex chars of the TLS key fingerprint) let the central side refuse a CSR
made with other keys.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from idstation.mqtt.enrolment.errors import TokenError
from idstation.mqtt.topics import valid_name as _topic_name

PREFIX = "IDSPAIR"
VERSION = "1"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DEVICE_RE = re.compile(r"^ids-[0-9a-f]{16}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEX_RE = re.compile(r"^[0-9a-f]{32}$")
NAME_RULE = "1-64 of A-Z a-z 0-9 . _ - and not starting with . _ - (an MQTT topic level that fits the pairing QR code)"


def valid_name(value: object) -> bool:
    """Device, site and counter names: the topic rule (mqtt.topics.valid_name), at most 64 characters (the QR code).

    The one rule for these names, wherever they are given. On the box: ``config check`` and ``run``
    (the configuration), ``provision init``, the bundle of ``provision apply``/``enroll`` and the
    binding that ``run`` loads. On the centre: the registry's records, ``central enroll`` and
    ``revoke``, the enrolment service and the counters of ``central add-client``. ``NAME_RULE`` says
    it in words for error messages. (Listener groups and service client names keep the wider topic rule.)
    """
    return _topic_name(value) and isinstance(value, str) and bool(NAME_RE.fullmatch(value))


def new_token() -> str:
    return secrets.token_urlsafe(16)


def token_hash(token: str) -> str:
    return hashlib.sha256(b"idstation-pairing-token\x00" + token.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class PairingCode:
    device_id: str
    site: str
    counter: str
    token: str
    tls_fp: str  # first 32 hex chars of the TLS key's SPKI SHA-256

    def __repr__(self) -> str:
        return (
            f"PairingCode(device_id={self.device_id!r}, site={self.site!r}, counter={self.counter!r}, token=<secret>)"
        )

    def text(self) -> str:
        fields = (PREFIX, VERSION, self.device_id, self.site, self.counter, self.token, self.tls_fp)
        return ":".join(fields)

    @classmethod
    def parse(cls, text: str) -> PairingCode:
        parts = text.strip().split(":")
        if len(parts) != 7 or parts[0] != PREFIX:
            raise TokenError("not an idstation pairing code")
        if parts[1] != VERSION:
            raise TokenError(f"pairing code version {parts[1]!r} is not supported")
        code = cls(*parts[2:])
        checks = (
            (_DEVICE_RE, code.device_id, "device id"),
            (NAME_RE, code.site, "site"),
            (NAME_RE, code.counter, "counter"),
            (_TOKEN_RE, code.token, "token"),
            (_HEX_RE, code.tls_fp, "TLS fingerprint"),
        )
        for pattern, value, what in checks:
            if not pattern.fullmatch(value):
                raise TokenError(f"pairing code has a malformed {what}")
        return code
