"""Event schema (version 1) and the device-side event builder.

Four kinds, which also name the last topic level: ``identity``, ``read_failed``, ``status``,
``heartbeat``. Every event's clear header carries ``v`` (schema version), ``kind``,
``event_id`` (UUIDv7), ``device_id``, ``site``, ``counter_id``, ``boot_id``, ``seq``,
``created_at`` (UTC, ISO 8601), ``clock_synced`` and ``key_id``. The header holds no personal
data; an identity event's personal part (:class:`IdentityPrivate`) travels sealed (HPKE).

``seq`` is per device and never goes back (persisted by the outbox). Identity and read_failed
events each take the next number, so the centre can see gaps and replays; status and heartbeat
events carry the last number taken (they do not consume one), which lets the centre notice
events still missing at the tail. ``docs/events.schema.json`` is exported from these models
(``python -m idstation.mqtt.events > docs/events.schema.json``; a test fails when it is stale).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from idstation.mqtt.clock import boot_id as kernel_boot_id
from idstation.mqtt.clock import uuid7
from idstation.mqtt.errors import SealError
from idstation.mqtt.seal import HPKE_SUITE_NAME, Signer, encode_frame, seal_private
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo

SCHEMA_VERSION = 1
KINDS = ("identity", "read_failed", "status", "heartbeat")
DATA_KINDS = ("identity", "read_failed")  # take a seq number; never dropped
TELEMETRY_KINDS = ("status", "heartbeat")

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_UUID7 = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_SHORT = r"^[A-Za-z0-9_.:-]{1,64}$"

__all__ = [
    "DATA_KINDS",
    "KINDS",
    "MAX_SEQ",
    "SCHEMA_VERSION",
    "TELEMETRY_KINDS",
    "BuiltEvent",
    "EventBuilder",
    "Header",
    "IdentityPrivate",
    "event_json_schema",
    "parse_header",
    "parse_private",
]


MAX_SEQ = 2**53  # exact in every JSON implementation (IEEE double) and in a signed 64-bit column
MAX_CLOCK_AHEAD_S = 86400.0  # a created_at further ahead of the receiver's clock is refused
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # even a box without a clock starts past this
MAX_INFO_KEYS = 64


def _real_utc_time(value: str, info: ValidationInfo) -> str:
    """``created_at``: a real date and time (not 2024-13-45), after 2000, at most a day ahead."""
    try:
        when = dt.datetime.fromisoformat(value.removesuffix("Z") + "+00:00")
    except ValueError:
        raise ValueError("not a real date and time") from None
    now = info.context["now"] if info.context else dt.datetime.now(dt.UTC)
    if when < EARLIEST or (when - now).total_seconds() > MAX_CLOCK_AHEAD_S:
        raise ValueError("outside the accepted time range")
    return value


def _small_info(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_INFO_KEYS or any(len(k) > 64 for k in value):
        raise ValueError(f"at most {MAX_INFO_KEYS} keys of at most 64 characters")
    return value


_CreatedAt = Annotated[str, AfterValidator(_real_utc_time)]
_Info = Annotated[dict[str, Any], AfterValidator(_small_info)]


class _Common(BaseModel):
    # strict: a JSON string is not a number, a number not a boolean (two readers, one meaning)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    v: Literal[1] = Field(default=1, description="schema version (SCHEMA_VERSION)")
    event_id: str = Field(pattern=_UUID7, description="UUIDv7, unique per event, kept across resends")
    device_id: str = Field(pattern=_NAME)
    site: str = Field(pattern=_NAME)
    counter_id: str = Field(pattern=_NAME)
    boot_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0, le=MAX_SEQ, description="per-device sequence number, never goes back")
    created_at: _CreatedAt = Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$", description="UTC, at most a day ahead"
    )
    clock_synced: bool = Field(description="the device clock was NTP-synchronised when the event was made")
    key_id: str = Field(min_length=1, max_length=255, description="the Ed25519 key that signed the frame")


class IdentityHeader(_Common):
    """A card was read: everything personal is in the sealed part."""

    kind: Literal["identity"]
    enc: Literal["DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/ChaCha20-Poly1305"] = HPKE_SUITE_NAME


class ReadFailedHeader(_Common):
    """A read was attempted and failed. ``reason`` is a short code, ``detail`` a non-personal text."""

    kind: Literal["read_failed"]
    reason: str = Field(pattern=_SHORT)
    detail: str = Field(default="", max_length=500)


class StatusHeader(_Common):
    """Retained device status (``online``/``offline``/``alarm``...) with non-personal facts."""

    kind: Literal["status"]
    state: str = Field(pattern=_SHORT)
    info: _Info = Field(default_factory=dict)


class HeartbeatHeader(_Common):
    """Periodic liveness with counters (outbox depth, uptime...)."""

    kind: Literal["heartbeat"]
    info: _Info = Field(default_factory=dict)


Header = Annotated[
    IdentityHeader | ReadFailedHeader | StatusHeader | HeartbeatHeader,
    Field(discriminator="kind"),
]
_HEADER: TypeAdapter[Any] = TypeAdapter(Header)
_VALIDATE_HEADER = _HEADER.validator.validate_python


class IdentityPrivate(BaseModel):
    """The sealed part of an identity event (decrypted only by the centre).

    The box builds it as this model (agent/wiring.py) and the centre validates it again after
    opening (:func:`parse_private`); a key the model does not name is refused on both sides.
    """

    model_config = ConfigDict(extra="forbid")

    source: Literal["chip", "qr_only"]
    status: str | None = Field(default=None, max_length=64, description="the box's verdict (verified, ...)")
    citizen: dict[str, Any] = Field(description="the citizen object of `idstation read-card --json`")
    verification: dict[str, Any] = Field(default_factory=dict, description="the chip's verification verdict")
    face: dict[str, str] | None = Field(default=None, description='{"mime", "base64"}')
    data_groups: dict[str, str] = Field(default_factory=dict, description="raw data groups, base64 per DG name")
    ef_sod: str | None = Field(default=None, description="EF.SOD, base64, so the centre can redo passive auth")
    aa_signature: str | None = Field(
        default=None,
        max_length=2048,
        description=(
            "the chip's Active Authentication signature, base64, over the first 8 bytes of SHA-256 of "
            "this event's event_id (proof the card was on the box for this event)"
        ),
    )
    access: str | None = Field(default=None, description="access method (PACE-CAN, BAC...)")
    qr: dict[str, Any] | None = Field(default=None, description="citizen data from the QR code")


def parse_header(
    data: dict[str, Any], *, now: dt.datetime | None = None
) -> IdentityHeader | ReadFailedHeader | StatusHeader | HeartbeatHeader:
    """Validate a clear header; a bad one is a :class:`SealError` naming the field, not the value.

    ``now`` (UTC, default the system clock) bounds ``created_at`` (at most a day ahead).
    """
    if not isinstance(data, dict):
        raise SealError("invalid event header: not an object")
    try:
        # the core validator itself (TypeAdapter.validate_python adds a Python layer per call)
        return _VALIDATE_HEADER(data, context={"now": now} if now is not None else None)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise SealError(f"invalid event header: {', '.join(fields)[:200]}") from None


def parse_private(data: Any) -> IdentityPrivate:
    """Validate an opened identity part; a bad one is a :class:`SealError` naming the fields, not the values."""
    try:
        return IdentityPrivate.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "(root)" for err in exc.errors()})
        raise SealError(f"invalid identity part: {', '.join(fields)[:200]}") from None


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the wire header and the sealed identity part (docs/events.schema.json)."""
    header = _HEADER.json_schema()
    private = IdentityPrivate.model_json_schema()
    defs = {**header.pop("$defs", {}), **private.pop("$defs", {})}
    defs["IdentityPrivate"] = private
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://idstation.example/schemas/events-v1.json",
        "title": f"idstation event header, schema version {SCHEMA_VERSION}",
        "description": (
            "Clear header of an idstation frame (see docs/mqtt.md). The sealed part of an identity "
            "event decrypts to #/$defs/IdentityPrivate."
        ),
        **header,
        "$defs": defs,
    }


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class BuiltEvent:
    """A signed (and for identity, sealed) event ready for the outbox."""

    event_id: str
    kind: str
    seq: int
    frame: bytes

    def __repr__(self) -> str:
        return f"BuiltEvent(event_id={self.event_id!r}, kind={self.kind!r}, seq={self.seq}, size={len(self.frame)})"


class EventBuilder:
    """Makes signed frames for one device. Pure apart from the injected clock, ids and boot id."""

    def __init__(
        self,
        device_id: str,
        site: str,
        counter_id: str,
        signer: Signer,
        central_key: X25519PublicKey | None,
        *,
        boot_id: str | None = None,
        clock_synced: Any = None,
        now: Any = None,
        new_id: Any = None,
    ) -> None:
        from idstation.mqtt.clock import clock_synced as kernel_clock_synced

        self.device_id, self.site, self.counter_id = device_id, site, counter_id
        self.signer, self.central_key = signer, central_key
        self.boot_id = boot_id or kernel_boot_id()
        self._clock_synced = clock_synced or kernel_clock_synced
        self._now = now or _utc_now
        self._new_id = new_id or uuid7
        self._synced_cache: tuple[float, bool] | None = None

    def new_event_id(self) -> str:
        return self._new_id()

    def build(
        self,
        kind: str,
        seq: int,
        *,
        event_id: str | None = None,
        private: dict[str, Any] | None = None,
        **clear: Any,
    ) -> BuiltEvent:
        """Validate the header, seal ``private`` (identity only) and sign."""
        if kind not in KINDS:
            raise TypeError(f"unknown event kind {kind!r}")
        event_id = event_id or self._new_id()
        header: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "kind": kind,
            "event_id": event_id,
            "device_id": self.device_id,
            "site": self.site,
            "counter_id": self.counter_id,
            "boot_id": self.boot_id,
            "seq": seq,
            "created_at": self._now(),
            "clock_synced": self._synced(),
            "key_id": self.signer.key_id,
            **clear,
        }
        sealed = b""
        if kind == "identity":
            if private is None or self.central_key is None:
                raise TypeError("an identity event needs a private part and the central public key")
            header["enc"] = HPKE_SUITE_NAME
            sealed = seal_private(private, self.central_key, self.device_id, event_id)
        elif private is not None:
            raise TypeError("only identity events carry a sealed part")
        parse_header(header)  # never put an invalid event into the outbox
        return BuiltEvent(event_id, kind, seq, encode_frame(header, sealed, self.signer))

    def _synced(self) -> bool:
        import time

        now = time.monotonic()
        if self._synced_cache is None or now - self._synced_cache[0] > 10.0:
            self._synced_cache = (now, bool(self._clock_synced()))
        return self._synced_cache[1]


def main() -> None:  # pragma: no cover - exercised by the schema staleness test
    json.dump(event_json_schema(), sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
