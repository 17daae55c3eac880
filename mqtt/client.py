"""The device side: :class:`Publisher`, the agent's event sink.

Public API (the agent wires it; see docs/mqtt.md)::

    pub = Publisher(PublisherConfig(
        broker_url="mqtts://broker:8883", device_id="box-0001", site="hn-bd-001", counter="c01",
        signing_key=Path(".../signing_key.pem") or Ed25519PrivateKey,
        central_public_key=Path(".../central.pub.pem") or X25519PublicKey,
        outbox_path=Path("/var/lib/idstation/outbox.sqlite"),
        tls=TlsOptions(ca_file=..., cert_file=..., key_file=...), protocol="auto"))
    pub.start()
    event_id = pub.submit_identity({"source": "chip", "citizen": {...}, "verification": {...}, ...})
    pub.submit_read_failed("access_denied", "no key opened the chip")
    pub.set_status({"reader": "ok"}, state="online")     # retained; the last will says "offline"
    pub.heartbeat({"uptime_s": 12})
    pub.stats()        # {"connected", "protocol", "outbox": {...}, "last_ack_at", "inflight", ...}
    pub.stop(timeout=5)

``submit_*`` return once the event is durable in the outbox (never before); they raise
:class:`OutboxFull` when the outbox refuses a data event. Delivery is the connection thread's
job: LIVE rows first (a bounded in-flight window), then BACKLOG (its own small window and a
byte rate), then TELEMETRY. Telemetry leaves the outbox when the broker acknowledged it. With
receipt keys (``receipt_keys``), a data event leaves it only when the centre's signed receipt
covers it (subscribed on the counter's receipt topic); PUBACK marks it "at the broker", and
without a receipt it is sent again with backoff (:mod:`idstation.mqtt.outbox_receipts`).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from idstation.mqtt.client_config import PublisherConfig, TokenBucket
from idstation.mqtt.client_receipts import ReceiptTracker, load_receipt_keys
from idstation.mqtt.connection import Backoff, Connection, TlsOptions, parse_broker_url
from idstation.mqtt.errors import OutboxDiskFull, OutboxFull, PublishError
from idstation.mqtt.events import DATA_KINDS, KINDS, EventBuilder
from idstation.mqtt.outbox import Lane, Outbox, OutboxRow, ResendPolicy
from idstation.mqtt.receipt import receipt_topic
from idstation.mqtt.seal import Signer, load_central_public_key, load_signing_key
from idstation.mqtt.topics import topic_for

log = structlog.get_logger(__name__)

__all__ = ["Publisher", "PublisherConfig", "TlsOptions"]

# MQTT 5 Maximum Packet Size of the box: all it receives is acknowledgements and receipts (a few
# KB at most), so a huge retained message on its receipt topic never reaches a 512 MB box.
RECEIVE_CAP = 64 * 1024


class Publisher:
    """Durable, signed, encrypted event publishing for one device."""

    def __init__(self, config: PublisherConfig, *, on_ack: Callable[[str, str], None] | None = None) -> None:
        """``on_ack(event_id, kind)`` runs on the connection thread when the broker acknowledged an event."""
        self.config = c = config
        self._on_ack = on_ack
        key = c.signing_key if isinstance(c.signing_key, Ed25519PrivateKey) else load_signing_key(c.signing_key)
        central = (
            c.central_public_key
            if isinstance(c.central_public_key, X25519PublicKey)
            else load_central_public_key(c.central_public_key)
        )
        self.builder = EventBuilder(c.device_id, c.site, c.counter, Signer(key, c.key_id), central)
        keys = load_receipt_keys(c.receipt_keys)
        self.receipts = ReceiptTracker(keys, receipt_topic(c.site, c.counter), c.device_id, c.receipt_alarm_s)
        resend = ResendPolicy(c.receipt_timeout_s, max(c.receipt_backoff_max_s, c.receipt_timeout_s))
        self.outbox = Outbox(c.outbox_path, max_bytes=c.max_bytes, live_window_s=c.live_window_s, resend=resend)
        self._status: tuple[str, dict[str, Any]] = ("online", {})
        self._pump_lock = threading.Lock()
        self._acks: collections.deque[tuple[int, bool]] = collections.deque()
        self._inflight: dict[int, OutboxRow] = {}
        self._refused: dict[int, float] = {}
        self._live_waiting = True  # live rows may be stored but not in flight (the pump must look)
        # a corrupt outbox was set aside: say so (with what was salvaged) at the first connection
        self._alarm: str | None = "outbox_corrupt" if self.outbox.set_aside else None
        self._fresh: collections.deque[OutboxRow] = collections.deque()  # stored live rows not yet sent
        self._last_pump = 0.0
        self._bucket = TokenBucket(c.backlog_rate_bytes)
        self._last_flush = time.monotonic()
        self.last_ack_at: float | None = None
        self.published = 0
        self.acked = 0
        self._started = time.monotonic()
        self._conn = Connection(
            parse_broker_url(c.broker_url),
            c.device_id,
            protocol=c.protocol,
            tls=c.tls,
            keepalive=c.keepalive,
            username=c.username,
            password=c.password,
            configure=self._configure,
            on_connect=self._on_connect,
            on_idle=self._on_idle,
            on_disconnect=self._on_disconnect,
            before_disconnect=self._before_disconnect,
            backoff=Backoff(c.reconnect_min_s, c.reconnect_max_s),
            name="publisher",
            max_packet_size=RECEIVE_CAP,
        )

    # --- public API ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (returns at once; events queue durably meanwhile)."""
        self._conn.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._conn.connected.wait(timeout)

    def submit_identity(self, private: dict[str, Any], *, event_id: str | None = None) -> str:
        """Seal, sign and store an identity event; returns its event id once it is durable.

        ``event_id``: made before the chip was read (its Active Authentication challenge is derived
        from it, ``agent.emrtd.active_auth.challenge_for``); default a fresh one."""
        if not isinstance(private, dict):
            raise TypeError("the identity event's private part is a dict")
        private = {"source": "chip", **private}
        return self._submit("identity", private=private, **({"event_id": event_id} if event_id else {}))

    def submit_read_failed(self, reason: str, detail: str = "") -> str:
        """A read that failed: ``reason`` a short code, ``detail`` a text without personal data."""
        return self._submit("read_failed", reason=reason, detail=detail[:500])

    def set_status(self, info: dict[str, Any] | None = None, state: str = "online") -> str | None:
        """Publish the retained device status (re-sent on every reconnect)."""
        self._status = (state, dict(info or {}))
        return self._submit("status", retain=True, state=state, info=self._status[1])

    def heartbeat(self, info: dict[str, Any] | None = None) -> str | None:
        """Telemetry: liveness and counters (dropped oldest-first when the outbox is full)."""
        info = {"uptime_s": round(time.monotonic() - self._started, 1), "outbox": self.outbox.depth(), **(info or {})}
        return self._submit("heartbeat", info=info)

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self._conn.connected.is_set(),
            "protocol": self._conn.negotiated,
            "connects": self._conn.connects,
            "outbox": self.outbox.depth(),
            "last_seq": self.outbox.last_seq,
            "inflight": len(self._inflight),
            "published": self.published,
            "acked": self.acked,
            "last_ack_at": self.last_ack_at,
            "outbox_full": self.outbox.full_alarm,
            "disk_full": self.outbox.disk_full,
            "dropped_telemetry": self.outbox.dropped_telemetry,
            "outbox_set_aside": str(self.outbox.set_aside) if self.outbox.set_aside else None,
            "outbox_salvaged": self.outbox.salvage.salvaged if self.outbox.salvage else None,
            "receipts": self.receipts.as_dict(),
        }

    def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (everything acknowledged). For demos, tests and shutdown."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._pump_lock:
                self.outbox.flush_acks()
            if self.outbox.depth()["total"] == 0:
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Say "offline" (retained), wait a little for acknowledgements, disconnect; the outbox stays intact."""
        deadline = time.monotonic() + timeout / 2
        while self._inflight and time.monotonic() < deadline and self._conn.connected.is_set():
            time.sleep(0.02)
        self._conn.stop(timeout)  # the connection thread says "offline" (_before_disconnect) first
        with self._pump_lock:
            self._drain_acks()
            self.outbox.close()

    # --- internals -------------------------------------------------------------------------------

    def _submit(self, kind: str, *, private: dict[str, Any] | None = None, retain: bool = False, **clear: Any) -> Any:
        topic = topic_for(self.config.site, self.config.counter, kind)
        if self.receipts.on and isinstance(clear.get("info"), dict):
            # telemetry tells the centre below which number nothing more will come from this box,
            # so a gap there (rows lost to a corrupt outbox, a renewed key's new stream) can close
            clear["info"] = {**clear["info"], "seq_floor": self.outbox.seq_floor()}
        try:
            event = self.outbox.append(
                kind,
                topic,
                lambda seq: self.builder.build(kind, seq, private=private, **clear),
                retain=retain,
                on_commit=self._committed,
            )
        except (OutboxFull, OutboxDiskFull) as exc:
            # published directly (not stored: there is no room) by the connection thread
            self._alarm = "disk_full" if isinstance(exc, OutboxDiskFull) else "outbox_full"
            self._conn.wake()
            raise
        if event is None:
            return None
        log.debug("event_queued", kind=kind, event_id=event.event_id, seq=event.seq)
        if self._conn.connected.is_set():
            self._conn.wake()  # the connection thread publishes; this thread only made it durable
        return event.event_id

    def _committed(self, row: OutboxRow) -> None:
        """Runs under the outbox lock right after the commit: the pump takes the same lock to clear
        the fresh queue and read the live lane, so a new row reaches exactly one of the two."""
        if row.lane is Lane.LIVE and self._conn.connected.is_set():
            self._fresh.append(row)

    def _offline_frame(self, reason: str) -> bytes:
        return self.builder.build("status", self.outbox.last_seq, state="offline", info={"reason": reason}).frame

    def _configure(self, client: Any) -> None:
        client.max_inflight_messages_set(self.config.inflight + 8)
        client.max_queued_messages_set(0)
        topic = topic_for(self.config.site, self.config.counter, "status")
        client.will_set(topic, self._offline_frame("connection_lost"), qos=1, retain=True)
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        # on the connection thread, inside paho: only queue; _on_idle applies it
        self.receipts.offer(message.topic, message.payload)

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, reason: Any, _props: Any) -> None:
        # Called with paho's internal lock held: only record, never publish from here.
        self._acks.append((mid, bool(getattr(reason, "is_failure", False))))

    def _on_connect(self, client: Any) -> None:
        with self._pump_lock:
            self._inflight.clear()
            self._acks.clear()
            self._live_waiting = True
        if self.receipts.on:
            client.subscribe(self.receipts.topic, qos=1)  # retained: the latest receipt comes at once
        state, info = self._status
        with contextlib.suppress(PublishError):  # a full outbox or disk: the alarm below still goes out
            self._submit("status", retain=True, state=state, info={**info, "protocol": self._conn.negotiated})
            if self.outbox.full_alarm:
                self._submit("status", retain=True, state="alarm", info={"alarm": "outbox_full"})
        if self.outbox.disk_full:
            self._alarm = "disk_full"  # nothing can be stored: the alarm goes out directly
        self._on_idle(client)

    def _on_disconnect(self) -> None:
        with self._pump_lock:
            self._drain_acks()
            if self._inflight:
                log.info("publisher_inflight_requeued", count=len(self._inflight))
            self._inflight.clear()

    def _before_disconnect(self, client: Any) -> None:
        """On a clean stop: the retained status says "offline" (the will covers the unclean ones)."""
        topic = topic_for(self.config.site, self.config.counter, "status")
        client.publish(topic, self._offline_frame("stopped"), qos=1, retain=True)

    def _alarm_info(self, alarm: str | None) -> dict[str, Any]:
        info: dict[str, Any] = {"alarm": alarm}
        salvage = self.outbox.salvage
        if alarm == "outbox_corrupt" and salvage is not None:
            info.update(salvaged=salvage.salvaged, damaged=salvage.damaged, complete=salvage.complete)
        if alarm == "no_receipt":
            depth = self.outbox.depth()
            info.update(awaiting_receipt=depth["awaiting_receipt"], oldest_awaiting_s=depth["oldest_awaiting_s"])
        return info

    def _publish_alarm(self, client: Any) -> None:
        alarm, self._alarm = self._alarm, None
        info = self._alarm_info(alarm)
        frame = self.builder.build("status", self.outbox.last_seq, state="alarm", info=info).frame
        client.publish(topic_for(self.config.site, self.config.counter, "status"), frame, qos=1, retain=True)
        log.error("publisher_alarm", alarm=alarm)

    def _on_idle(self, client: Any) -> None:
        if self._alarm:
            self._publish_alarm(client)
        with self._pump_lock:
            now = time.monotonic()
            if self.receipts.waiting:
                self._drain_acks()  # marks first, so a receipt never races its own PUBACK
                self.receipts.apply(self.outbox, self.builder.signer.key_id)
            if self.receipts.alarm_due(self.outbox):
                self._alarm = "no_receipt"
            if self._live_waiting or now - self._last_pump > 0.05:
                self._pump()
            else:
                self._send_fresh()
            if now - self._last_flush > 0.2:
                self.outbox.flush_acks()
                self._last_flush = now

    def _send_fresh(self) -> None:
        """Publish just-stored live rows without asking the database (nothing older waits)."""
        self._drain_acks()
        client = self._conn.client
        if client is None or not self._fresh:
            return
        sent = {r.id for r in self._inflight.values()}
        while self._fresh and len(self._inflight) < self.config.inflight:
            row = self._fresh.popleft()
            if row.id in sent:
                continue  # a pump already picked it from the database
            if not self._publish(client, row):
                self._live_waiting = True
                return

    def _drain_acks(self) -> None:
        while self._acks:
            mid, refused = self._acks.popleft()
            row = self._inflight.pop(mid, None)
            if row is None:
                continue
            if refused:
                self._refused[row.id] = time.monotonic() + self.config.refused_retry_s
                log.error("publish_refused_by_broker", event_id=row.event_id, kind=row.kind)
                continue
            if self.receipts.on and row.kind in DATA_KINDS:
                self.outbox.mark_at_broker(row.id)  # kept until the centre's receipt covers it
            else:
                self.outbox.ack(row.id)
            self.acked += 1
            self.last_ack_at = time.time()
            if self._on_ack is not None:
                self._on_ack(row.event_id, row.kind)

    def _pump(self) -> None:
        """Fill the in-flight window from the lanes, in priority order. Caller holds the pump lock."""
        self._drain_acks()
        client = self._conn.client
        if client is None:
            return
        self._last_pump = time.monotonic()
        c = self.config
        if self._refused:
            now = time.monotonic()
            self._refused = {k: v for k, v in self._refused.items() if v > now}
        busy = {row.id for row in self._inflight.values()} | set(self._refused)
        counts = collections.Counter(row.lane for row in self._inflight.values())
        free = c.inflight - len(self._inflight)
        for lane, cap in (
            (Lane.LIVE, c.inflight),
            (Lane.BACKLOG, c.backlog_inflight),
            (Lane.TELEMETRY, c.telemetry_inflight),
        ):
            room = min(free, cap - counts[lane])
            if room <= 0:
                self._live_waiting = self._live_waiting or lane is Lane.LIVE
                continue
            if lane is Lane.LIVE:
                with self.outbox.lock:  # atomic with appends: a new row is in the query or in fresh
                    self._fresh.clear()
                    rows = self.outbox.pending(lane, room, busy)
                self._live_waiting = len(rows) >= room  # a full batch: more may wait
            else:
                rows = self.outbox.pending(lane, room, busy)
            for row in rows:
                if lane is Lane.BACKLOG and not self._bucket.take(row.size):
                    break
                if not self._publish(client, row):
                    self._live_waiting = True
                    return
                free -= 1

    def _publish(self, client: Any, row: OutboxRow) -> bool:
        import paho.mqtt.client as mqtt

        try:
            info = client.publish(row.topic, row.frame, qos=1, retain=row.retain)
        except (ValueError, TypeError):  # a damaged row (its topic): the kind still names the topic
            if row.kind not in KINDS:
                log.error("outbox_row_damaged", row_id=row.id)
                self.outbox.ack(row.id)  # nothing can send it; the frame alone would be rejected anyway
                return True
            info = client.publish(topic_for(self.config.site, self.config.counter, row.kind), row.frame, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        self._inflight[info.mid] = row
        self.published += 1
        return True
