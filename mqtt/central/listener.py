"""The central side: verify, decrypt, de-duplicate (a small library for central servers).

:class:`CentralProcessor` is the sans-MQTT core: ``process(topic, payload) -> AcceptedEvent``
or :class:`EventRejected` (``reason`` one of ``bad_topic``, ``malformed``, ``unknown_device``,
``revoked_device``, ``bad_signature``, ``bad_header``, ``wrong_topic``, ``undecryptable``,
``bad_private``, ``passive_auth_failed``, ``chip_data_mismatch`` (with a chip check),
``duplicate``, ``replay``, ``internal_error``). Checks, in order: the topic's shape; the frame; the key id in the
registry (enrolled, not revoked); the Ed25519 signature over the received bytes; the header
schema; the header's device/site/counter/kind against the registry binding and the topic; the
HPKE seal and the private part's schema; the chip data (``chip_check``, :mod:`.chip_check`); the
store (``event_id`` held, ``seq`` gaps and replays: :mod:`.store`).

:class:`CentralListener` drives it over MQTT (:mod:`.mqtt_transport`: an MQTT 5 shared subscription
``$share/{group}/idstation/v1/+/+/+``, plain over 3.1.1, a persistent session) through the
batching pipeline of :mod:`.intake`: check, record a batch in one store transaction, THEN
acknowledge the broker, THEN receipts, THEN ``on_event``. ``shared=False`` subscribes plainly
even over MQTT 5: a single listener on a site mosquitto, since mosquitto 2.0.x does not keep a
shared subscription of an offline persistent session across a broker restart (measured: messages
published after the restart, before the listener returns, are lost; plain ones are kept).
:func:`event_to_json_line` is the JSON line ``idstation central listen --json`` (and
``idstation demo --json``) prints per accepted event.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.dedupe import DedupeStore, default_state_path
from idstation.mqtt.central.intake import Intake
from idstation.mqtt.central.mqtt_transport import SESSION_EXPIRY_MAX, MqttTransport
from idstation.mqtt.central.receipts import DEFAULT_INTERVAL, ReceiptBatcher, paho_publisher
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.retention import RetentionLoop
from idstation.mqtt.central.store import Incoming, Outcome, Store, Verdict, open_store
from idstation.mqtt.central.transport import ReceiptPump, Transport
from idstation.mqtt.connection import TlsOptions
from idstation.mqtt.errors import EventRejected, SealError
from idstation.mqtt.events import parse_header, parse_private
from idstation.mqtt.seal import MAX_FRAME, Signer, decode_frame, load_central_private_key, open_private, verify_frame
from idstation.mqtt.topics import parse_topic

log = structlog.get_logger(__name__)

# SESSION_EXPIRY_MAX (from mqtt_transport): MQTT 5 Session Expiry Interval "never": the broker
# applies its own maximum (mosquitto: persistent_client_expiration); over 3.1.1 the session is
# simply persistent.

__all__ = [
    "SESSION_EXPIRY_MAX",
    "AcceptedEvent",
    "CentralListener",
    "CentralProcessor",
    "Checked",
    "event_to_json_line",
]

_BULKY = ("face", "data_groups", "ef_sod")
# The largest PUBLISH the listener accepts (MQTT 5 Maximum Packet Size): a frame plus topic and
# properties. Over MQTT 3.1.1 the broker's max_packet_size must say the same (docs/mqtt.md).
MAX_PACKET = MAX_FRAME + 64 * 1024


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """A verified, decrypted, first-seen event. ``private`` holds personal data: never log it."""

    header: dict[str, Any]
    topic: str
    private: dict[str, Any] | None = field(default=None, repr=False)
    observation: Outcome | None = None
    received_at: float = 0.0

    @property
    def event_id(self) -> str:
        return str(self.header["event_id"])

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def cursor(self) -> int | None:
        """The store's cursor of this event (``central export --after``)."""
        return self.observation.cursor if self.observation is not None else None

    def __repr__(self) -> str:
        return f"AcceptedEvent(event_id={self.event_id!r}, kind={self.kind!r}, device_id={self.header['device_id']!r})"


def event_to_json_line(event: AcceptedEvent, *, full: bool = False) -> str:
    """One JSON line per accepted event (no trailing newline).

    Keys: ``event_id, device_id, site, counter_id, boot_id, seq, kind, created_at, clock_synced,
    key_id, received_at``; identity adds ``citizen``, ``verification``, ``source``, ``access``,
    ``qr`` and ``has_face`` (``full=True`` also adds ``face``, ``data_groups``, ``ef_sod``), and
    ``centre_verification`` when the centre re-verified the chip (``central listen --csca``);
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
        if "centre_verification" in h:  # the centre's own chip check (central listen --csca)
            line["centre_verification"] = h["centre_verification"]
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


@dataclass(frozen=True, slots=True)
class Checked:
    """A message that passed every check but the store's: verified, opened, ready to record."""

    topic: str
    header: dict[str, Any]
    private: dict[str, Any] | None = field(repr=False)
    incoming: Incoming


class CentralProcessor:
    """Verify → decrypt (:meth:`check`) → record (the store) → classify (:meth:`accept`). Thread-safe."""

    def __init__(
        self,
        registry: Registry,
        central_key: X25519PrivateKey,
        store: Store,
        chip_check: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """``chip_check(event_id, private) -> verdict`` re-verifies an identity event's chip data
        (the CLI's ``--csca``, :class:`.chip_check.ChipCheck`: passive authentication, the citizen
        against DG1/DG13, presence by the chip's AA signature over the event's challenge) and
        raises EventRejected (``passive_auth_failed`` / ``chip_data_mismatch``) for data that does
        not hold; its verdict is kept beside the box's as the stored header's (and the JSON
        line's) ``centre_verification``."""
        self.registry, self.central_key, self.store, self.chip_check = registry, central_key, store, chip_check
        self.counts: Counter[str] = Counter()

    def check(self, topic: str, payload: bytes, received_at: float | None = None) -> Checked:
        """Every check that needs no store; a failure is :class:`EventRejected` with a reason."""
        try:
            raw, header, private = self._checked(topic, payload)
        except EventRejected as exc:
            self.counts[exc.reason] += 1
            raise
        incoming = Incoming(
            header.event_id,
            header.device_id,
            header.key_id,
            header.seq,
            header.kind,
            header.site,
            header.counter_id,
            str(raw.get("created_at")),
            received_at or time.time(),
            raw,
            bytes(payload),
        )
        return Checked(topic, raw, private, incoming)

    def accept(self, checked: Checked, outcome: Outcome) -> AcceptedEvent:
        """The event the store recorded, or :class:`EventRejected` (``duplicate``, ``replay``)."""
        try:
            _report(outcome, checked.incoming.device_id, checked.incoming.seq)
        except EventRejected as exc:
            self.counts[exc.reason] += 1
            raise
        self.counts["accepted"] += 1
        return AcceptedEvent(checked.header, checked.topic, checked.private, outcome, checked.incoming.received_at)

    def redelivered(self, checked: Checked, outcome: Outcome) -> AcceptedEvent:
        """A held event never delivered (its listener died after the commit), delivered now."""
        self.counts["redelivered"] += 1
        return AcceptedEvent(checked.header, checked.topic, checked.private, outcome, checked.incoming.received_at)

    def process(self, topic: str, payload: bytes, received_at: float | None = None) -> AcceptedEvent:
        """Check, record (a batch of one) and classify one message.

        Only a failure of the store itself escapes (StoreError: the caller retries the message
        later); any other failure of this one message is a rejection (``internal_error`` for the
        unforeseen).
        """
        checked = self.check(topic, payload, received_at)
        [outcome] = self.store.record([checked.incoming])
        return self.accept(checked, outcome)

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
            try:
                parse_private(private)  # the box built it as IdentityPrivate; the centre checks again
            except SealError as exc:
                raise EventRejected("bad_private", str(exc)) from None
            if self.chip_check is not None:
                verdict = self.chip_check(header.event_id, private)
                raw = {**raw, "centre_verification": verdict}  # a copy: the signed frame is kept as received
        return raw, header, private


def _report(obs: Outcome, device_id: str, seq: int) -> None:
    if obs.verdict is Verdict.DUPLICATE:
        raise EventRejected("duplicate", "event already received")
    if obs.verdict is Verdict.REPLAY:
        raise EventRejected("replay", "sequence number already used")
    if obs.verdict is Verdict.GAP and obs.missing:
        log.warning("central_seq_gap", device_id=device_id, missing_from=obs.missing[0], missing_to=obs.missing[1])
    elif obs.verdict is Verdict.FILLED:
        log.info("central_seq_gap_filled", device_id=device_id, seq=seq)


class CentralListener:
    """Subscribe, check, record in batches, acknowledge, receipt, then hand accepted events to
    ``on_event`` (on the commit thread; see :mod:`.intake`).

    ``store``: a :class:`Store` (kept open at :meth:`stop`) or a store URL; without one, the
    embedded store at ``state_path`` (default :func:`default_state_path`). ``retention_days``:
    accepted events older than that are purged every hour (None: never).
    """

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
        store: Store | str | None = None,
        tls: TlsOptions | None = None,
        protocol: str = "auto",
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        session_expiry: int = SESSION_EXPIRY_MAX,
        receipt_signer: Signer | None = None,
        receipt_interval: float = DEFAULT_INTERVAL,
        max_batch: int = 200,
        max_wait: float = 0.05,
        retention_days: float | None = None,
        amqp: Sequence[str] | None = None,
        prefetch: int = 500,
        on_batch: Callable[[int, float], None] | None = None,
        on_receipt: Callable[[str, str, int, int], None] | None = None,
        chip_check: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """``amqp``: consume the shared quorum queue of a RabbitMQ cluster (these node URLs, tried
        in turn; ``prefetch`` bounds what this listener holds) instead of subscribing over MQTT at
        ``broker_url`` (see :mod:`.amqp`). ``on_batch(size, commit_s)`` and ``on_receipt(device_id,
        key_id, upto, n_above)`` feed the metrics (:mod:`.metrics`)."""
        self.registry = registry if isinstance(registry, Registry) else Registry(registry)
        key = central_key if isinstance(central_key, X25519PrivateKey) else load_central_private_key(central_key)
        self._owns_store = not hasattr(store, "record")
        self.store: Store = _open(store, state_path, group)
        self.processor = CentralProcessor(self.registry, key, self.store, chip_check)
        # receipts (issue 12): signed after the commit, at most one per stream per receipt_interval
        self.receipts = (
            ReceiptBatcher(receipt_signer, self.store, interval=receipt_interval, on_sent=on_receipt)
            if receipt_signer
            else None
        )
        self.group, self.shared = group, shared
        # default: unique per listener (two clients with one id kick each other off); a stable
        # --client-id keeps the persistent session across listener restarts
        client_id = client_id or f"idstation-central-{group}-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.transport: Transport
        if amqp:
            from idstation.mqtt.central.amqp import AmqpTransport

            self.transport = AmqpTransport(amqp, prefetch=prefetch)
            self._conn: Any = None
        else:
            self.transport = MqttTransport(
                broker_url,
                client_id,
                group=group,
                shared=shared,
                tls=tls,
                protocol=protocol,
                username=username,
                password=password,
                session_expiry=session_expiry,
                max_packet_size=MAX_PACKET,
                on_idle=self._publish_receipts,
            )
            self._conn = self.transport.conn
            self.subscribed = self.transport.subscribed
        self.intake = Intake(
            self.processor,
            self.transport,
            on_event=on_event,
            on_reject=on_reject,
            receipts=self.receipts,
            max_batch=max_batch,
            max_wait=max_wait,
            on_batch=on_batch,
            capacity=prefetch if amqp else None,
        )
        self._retention = RetentionLoop(self.store, retention_days) if retention_days else None
        # AMQP: receipts from a thread of their own (their store reads must not stall consumption)
        self._pump = ReceiptPump(self.receipts, self.transport) if amqp and self.receipts else None

    def start(self) -> None:
        self.intake.start()
        self.transport.start(self.intake.on_message)
        if self._retention is not None:
            self._retention.start()
        if self._pump is not None:
            self._pump.start()

    def wait_ready(self, timeout: float) -> bool:
        """Connected and subscribed."""
        return self.transport.wait_ready(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._pump is not None:
            self._pump.stop()
        if self._retention is not None:
            self._retention.stop()
        self.intake.stop(timeout + 5.0)
        self.transport.stop(timeout)
        if self._owns_store:
            self.store.close()

    def stats(self) -> dict[str, Any]:
        protocol = self._conn.negotiated if self._conn is not None else "amqp-0-9-1"
        return {"connected": self.transport.connected, "protocol": protocol, **self.processor.counts}

    def _publish_receipts(self, client: Any) -> None:
        if self.receipts is not None and self.receipts.pending():
            self.receipts.publish_due(paho_publisher(client))


def _open(store: Store | str | None, state_path: str | Path | None, group: str) -> Store:
    if store is None:
        return DedupeStore(state_path or default_state_path(group))
    if isinstance(store, str):
        return open_store(store, migrate=True)
    return store
