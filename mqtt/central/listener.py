"""The central side: verify, decrypt, de-duplicate (a small library for central servers).

:class:`CentralProcessor` is the sans-MQTT core: ``process(topic, payload) -> AcceptedEvent``
or :class:`EventRejected` (``reason`` one of ``bad_topic``, ``malformed``, ``unknown_device``,
``revoked_device``, ``bad_signature``, ``bad_header``, ``wrong_topic``, ``undecryptable``,
``duplicate``, ``replay``, ``internal_error``). Checks, in order: the topic's shape; the frame; the key id in the
registry (enrolled, not revoked); the Ed25519 signature over the received bytes; the header
schema; the header's device/site/counter/kind against the registry binding and the topic; the
HPKE seal; the shared dedupe state (``event_id`` seen, ``seq`` gaps and replays).

:class:`CentralListener` drives it over MQTT: an MQTT 5 shared subscription
``$share/{group}/idstation/v1/+/+/+`` (plain subscription over 3.1.1), a persistent session,
QoS 1 acknowledged after the event is recorded. ``shared=False`` subscribes plainly even over
MQTT 5: a single listener on a site mosquitto, since mosquitto 2.0.x does not keep a shared
subscription of an offline persistent session across a broker restart (measured: messages
published after the restart, before the listener returns, are lost; plain ones are kept).
:func:`event_to_json_line` is the JSON line ``idstation central listen --json`` (and
``idstation demo --json``) prints per accepted event.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.dedupe import DedupeStore, Observation, Verdict, default_state_path
from idstation.mqtt.central.receipts import DEFAULT_INTERVAL, DedupeReceiptState, ReceiptBatcher, paho_publisher
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.connection import Connection, TlsOptions, parse_broker_url
from idstation.mqtt.errors import EventRejected, SealError
from idstation.mqtt.events import DATA_KINDS, parse_header
from idstation.mqtt.receipt import is_receipt_topic
from idstation.mqtt.seal import Signer, decode_frame, load_central_private_key, open_private, verify_frame
from idstation.mqtt.topics import SUBSCRIPTION, is_provisioning_topic, parse_topic, shared_subscription

log = structlog.get_logger(__name__)

# MQTT 5 Session Expiry Interval "never": the broker applies its own maximum
# (mosquitto: persistent_client_expiration); over 3.1.1 the session is simply persistent.
SESSION_EXPIRY_MAX = 0xFFFFFFFF

__all__ = ["AcceptedEvent", "CentralListener", "CentralProcessor", "event_to_json_line"]

_BULKY = ("face", "data_groups", "ef_sod")


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """A verified, decrypted, first-seen event. ``private`` holds personal data: never log it."""

    header: dict[str, Any]
    topic: str
    private: dict[str, Any] | None = field(default=None, repr=False)
    observation: Observation | None = None
    received_at: float = 0.0

    @property
    def event_id(self) -> str:
        return str(self.header["event_id"])

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    def __repr__(self) -> str:
        return f"AcceptedEvent(event_id={self.event_id!r}, kind={self.kind!r}, device_id={self.header['device_id']!r})"


def event_to_json_line(event: AcceptedEvent, *, full: bool = False) -> str:
    """One JSON line per accepted event (no trailing newline).

    Keys: ``event_id, device_id, site, counter_id, boot_id, seq, kind, created_at, clock_synced,
    key_id, received_at``; identity adds ``citizen``, ``verification``, ``source``, ``access``,
    ``qr`` and ``has_face`` (``full=True`` also adds ``face``, ``data_groups``, ``ef_sod``);
    read_failed adds ``reason``, ``detail``; status adds ``state``, ``info``; heartbeat ``info``.
    """
    h = event.header
    line: dict[str, Any] = {
        k: h.get(k)
        for k in ("event_id", "device_id", "site", "counter_id", "boot_id", "seq", "kind", "created_at", "clock_synced")
    }
    line["key_id"] = h.get("key_id")
    line["received_at"] = _iso(event.received_at) if event.received_at else None
    if event.kind == "identity":
        private = event.private or {}
        line["citizen"] = private.get("citizen")
        line["verification"] = private.get("verification")
        line["source"] = private.get("source")
        line["access"] = private.get("access")
        line["qr"] = private.get("qr")
        line["has_face"] = bool(private.get("face"))
        if full:
            for key in _BULKY:
                line[key] = private.get(key)
    elif event.kind == "read_failed":
        line["reason"], line["detail"] = h.get("reason"), h.get("detail", "")
    elif event.kind == "status":
        line["state"], line["info"] = h.get("state"), h.get("info", {})
    else:
        line["info"] = h.get("info", {})
    if event.observation is not None and event.observation.verdict is not Verdict.NEW:
        line["sequence"] = event.observation.verdict.value
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class CentralProcessor:
    """Verify → decrypt → dedupe for one received message. Thread-safe."""

    def __init__(self, registry: Registry, central_key: X25519PrivateKey, store: DedupeStore) -> None:
        self.registry, self.central_key, self.store = registry, central_key, store
        self.counts: Counter[str] = Counter()

    def process(self, topic: str, payload: bytes, received_at: float | None = None) -> AcceptedEvent:
        """Verify, open and record one message: the event, or :class:`EventRejected` with a reason.

        Only a failure of the state store itself escapes (the caller retries the message later);
        any other failure of this one message is a rejection (``internal_error`` for the unforeseen).
        """
        try:
            raw, header, private = self._checked(topic, payload)
            data = header.kind in DATA_KINDS
            obs = self.store.observe(header.event_id, header.device_id, header.key_id, header.seq, data)
            _report(obs, header.device_id, header.seq)
        except EventRejected as exc:
            self.counts[exc.reason] += 1
            raise
        self.counts["accepted"] += 1
        return AcceptedEvent(raw, topic, private, obs, received_at or time.time())

    def _checked(self, topic: str, payload: bytes) -> tuple[dict[str, Any], Any, dict[str, Any] | None]:
        """The pure checks; anything unforeseen in them is this message's fault, not the centre's."""
        try:
            return self._verify(topic, payload)
        except EventRejected:
            raise
        except Exception as exc:  # one hostile message must never stop the centre
            log.error("central_event_check_failed", error=type(exc).__name__)
            raise EventRejected("internal_error", f"the event could not be checked: {type(exc).__name__}") from None

    def _verify(self, topic: str, payload: bytes) -> tuple[dict[str, Any], Any, dict[str, Any] | None]:
        site, counter, kind = parse_topic(topic)
        try:
            frame = decode_frame(payload)  # splits bytes only: nothing of the header is parsed yet
        except SealError as exc:
            raise EventRejected("malformed", str(exc)) from None
        record = self.registry.by_key_id(frame.key_id)
        if record is None:
            if self.registry.by_key_id(frame.key_id, include_revoked=True) is not None:
                raise EventRejected("revoked_device", "the device is revoked")
            raise EventRejected("unknown_device", "no enrolled device holds this key")
        try:
            verify_frame(frame, record.public_key)
        except SealError:
            raise EventRejected("bad_signature", "bad signature") from None
        try:
            raw = frame.header  # parsed (bounded) only now that the signature holds
            header = parse_header(raw)
        except SealError as exc:
            raise EventRejected("bad_header", str(exc)) from None
        if header.device_id != record.device_id or header.key_id != record.key_id:
            raise EventRejected("wrong_topic", "the header names another device or key")
        if (header.site, header.counter_id) != (record.site, record.counter) or (site, counter, kind) != (
            record.site,
            record.counter,
            header.kind,
        ):
            raise EventRejected("wrong_topic", "published outside the device's own topics")
        private = None
        if header.kind == "identity":
            try:
                private = open_private(frame.sealed, self.central_key, header.device_id, header.event_id)
            except SealError:
                raise EventRejected("undecryptable", "the sealed part does not decrypt") from None
        return raw, header, private


def _report(obs: Observation, device_id: str, seq: int) -> None:
    if obs.verdict is Verdict.DUPLICATE:
        raise EventRejected("duplicate", "event already received")
    if obs.verdict is Verdict.REPLAY:
        raise EventRejected("replay", "sequence number already used")
    if obs.verdict is Verdict.GAP and obs.missing:
        log.warning("central_seq_gap", device_id=device_id, missing_from=obs.missing[0], missing_to=obs.missing[1])
    elif obs.verdict is Verdict.FILLED:
        log.info("central_seq_gap_filled", device_id=device_id, seq=seq)


class CentralListener:
    """Subscribe, process, hand accepted events to ``on_event`` (runs on the MQTT thread)."""

    def __init__(
        self,
        broker_url: str,
        registry: Registry | str | Path,
        central_key: X25519PrivateKey | str | Path,
        *,
        on_event: Callable[[AcceptedEvent], None],
        on_reject: Callable[[str, EventRejected], None] | None = None,
        group: str = "idstation",
        shared: bool = True,
        state_path: str | Path | None = None,
        tls: TlsOptions | None = None,
        protocol: str = "auto",
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        session_expiry: int = SESSION_EXPIRY_MAX,
        receipt_signer: Signer | None = None,
        receipt_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.registry = registry if isinstance(registry, Registry) else Registry(registry)
        key = central_key if isinstance(central_key, X25519PrivateKey) else load_central_private_key(central_key)
        self.store = DedupeStore(state_path or default_state_path(group))
        self.processor = CentralProcessor(self.registry, key, self.store)
        # receipts (issue 12): signed after the commit, at most one per stream per receipt_interval
        self._receipt_state = DedupeReceiptState(self.store.path) if receipt_signer is not None else None
        self.receipts = (
            ReceiptBatcher(receipt_signer, self._receipt_state, interval=receipt_interval)
            if receipt_signer is not None and self._receipt_state is not None
            else None
        )
        self.group, self.shared = group, shared
        self._on_event, self._on_reject = on_event, on_reject
        self.subscribed = threading.Event()
        # default: unique per listener (two clients with one id kick each other off); a stable
        # --client-id keeps the persistent session across listener restarts
        client_id = client_id or f"idstation-central-{group}-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self._conn = Connection(
            parse_broker_url(broker_url),
            client_id[:64],
            protocol=protocol,
            tls=tls,
            clean_start=False,
            session_expiry=session_expiry,
            username=username,
            password=password,
            configure=self._configure,
            on_connect=self._subscribe,
            on_disconnect=self.subscribed.clear,
            on_idle=self._publish_receipts,
            name="central",
            manual_ack=True,
        )

    def start(self) -> None:
        self._conn.start()

    def wait_ready(self, timeout: float) -> bool:
        """Connected and subscribed."""
        return self.subscribed.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._conn.stop(timeout)
        if self._receipt_state is not None:
            self._receipt_state.close()
        self.store.close()

    def stats(self) -> dict[str, Any]:
        return {"connected": self._conn.connected.is_set(), "protocol": self._conn.negotiated, **self.processor.counts}

    def _configure(self, client: Any) -> None:
        client.on_message = self._on_message
        client.on_subscribe = lambda *_a: self.subscribed.set()

    def _subscribe(self, client: Any) -> None:
        topic = shared_subscription(self.group) if self.shared and self._conn.negotiated == "5" else SUBSCRIPTION
        client.subscribe(topic, qos=1)
        log.info("central_subscribed", topic=topic, protocol=self._conn.negotiated)

    def _on_message(self, client: Any, _userdata: Any, message: Any) -> None:
        """Acknowledge only what was recorded (accepted or rejected); a store failure reconnects,
        so the broker delivers the message again (the session is persistent)."""
        if is_provisioning_topic(message.topic) or is_receipt_topic(message.topic):  # not events: not rejects
            client.ack(message.mid, message.qos)
            return
        try:
            event = self.processor.process(message.topic, message.payload)
        except EventRejected as exc:
            client.ack(message.mid, message.qos)
            level = log.info if exc.reason == "duplicate" else log.warning
            level("central_event_rejected", reason=exc.reason, topic=message.topic, error=str(exc))
            if exc.reason == "duplicate":  # the box had no receipt for it: receipt it again
                self._note_duplicate(message.topic, message.payload)
            if self._on_reject:
                self._on_reject(message.topic, exc)
            return
        except sqlite3.Error as exc:
            log.error("central_state_store_failed", error=type(exc).__name__)
            client.disconnect()
            return
        except Exception as exc:  # one message must never stop the session (it would come back forever)
            client.ack(message.mid, message.qos)
            log.error("central_event_failed", topic=message.topic, error=type(exc).__name__)
            if self._on_reject:
                self._on_reject(message.topic, EventRejected("internal_error", type(exc).__name__))
            return
        client.ack(message.mid, message.qos)
        if self.receipts is not None and event.kind in DATA_KINDS:
            self.receipts.note_header(event.topic, event.header)
        try:
            self._on_event(event)
        except Exception as exc:  # the owner's callback must not kill the MQTT thread
            log.error("central_callback_failed", error=type(exc).__name__, event_id=event.event_id)

    def _note_duplicate(self, topic: str, payload: bytes) -> None:
        if self.receipts is not None:
            with contextlib.suppress(SealError):  # verified before it was found a duplicate
                self.receipts.note_header(topic, decode_frame(payload).header)

    def _publish_receipts(self, client: Any) -> None:
        if self.receipts is not None and self.receipts.pending():
            self.receipts.publish_due(paho_publisher(client))
