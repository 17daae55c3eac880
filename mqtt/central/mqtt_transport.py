"""The listener's MQTT adapter (:class:`~idstation.mqtt.central.transport.Transport` over paho).

MQTT 5 shared subscriptions ``$share/{group}/idstation/v1/+/+/{kind}``, one per event kind (plain
over 3.1.1, or with ``shared=False``; never ``receipt``: the centre does not get its own retained
receipts back), a persistent session (``clean_start=False``; Session Expiry Interval
``session_expiry``, by default 0xFFFFFFFF: the session never expires, so the broker applies its
own maximum, mosquitto's ``persistent_client_expiration``), QoS 1 with manual acknowledgement.

paho's client is not thread-safe for writes, so :meth:`ack` and :meth:`publish` only queue work
and wake the connection thread, which does it after its next loop turn; a batch's PUBACKs go out
in one write (:func:`~idstation.mqtt.paho_client.send_pubacks`), and the connection reads through
a 64 KiB buffer (:class:`~idstation.mqtt.paho_client.BufferedClient`): py-spy on a draining
listener, 60,000 messages, 26 % fewer samples on its connection thread. The listener asks for a
Receive Maximum of :data:`RECEIVE_MAXIMUM` (room for two batches: one being committed, the next
being read). Each delivery must be acknowledged once: MQTT reuses a packet id once it is
acknowledged, so a second acknowledgement could settle a later message. A delivery carries the
connection it came on: acknowledging it after a reconnect does nothing (the broker delivers it
again; the store de-duplicates). ``pause``/``resume`` need no action over MQTT: an unacknowledged
delivery holds one place of the broker's in-flight window, and the listener's bounded queue
stops this thread from reading once it is full, so a listener whose store is down stops receiving.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from idstation.mqtt.central.transport import Delivery, OnMessage, OnMessages
from idstation.mqtt.connection import Connection, TlsOptions, parse_broker_url
from idstation.mqtt.paho_client import send_pubacks
from idstation.mqtt.topics import event_subscriptions

log = structlog.get_logger(__name__)

__all__ = ["RECEIVE_MAXIMUM", "SESSION_EXPIRY_MAX", "MqttTransport"]

SESSION_EXPIRY_MAX = 0xFFFFFFFF  # MQTT 5 Session Expiry Interval "never" (the broker caps it)
# MQTT 5 Receive Maximum (CONNECT): the broker may have this many QoS 1 deliveries unacknowledged
# at this listener. The listener acknowledges a batch only after its commit, so the window must
# hold two batches (one being committed, the next being read) or the pipe runs dry each commit;
# without it mosquitto uses its max_inflight_messages (default 20). Not a memory bound: the
# intake's bounded queue stops this thread from reading (TCP then holds the broker back).
RECEIVE_MAXIMUM = 1000


class MqttTransport:
    def __init__(
        self,
        broker_url: str,
        client_id: str,
        *,
        group: str = "idstation",
        shared: bool = True,
        tls: TlsOptions | None = None,
        protocol: str = "auto",
        username: str | None = None,
        password: str | None = None,
        session_expiry: int = SESSION_EXPIRY_MAX,
        max_packet_size: int | None = None,
        receive_maximum: int | None = RECEIVE_MAXIMUM,
        on_idle: Callable[[Any], None] | None = None,
    ) -> None:
        self.group, self.shared = group, shared
        self.subscribed = threading.Event()
        self._on_message: OnMessage | None = None
        self._on_messages: OnMessages | None = None
        self._burst: list[Delivery] = []  # this loop turn's deliveries, for on_messages
        self._on_idle = on_idle
        self._generation = 0
        self._work: collections.deque[tuple[str, Any]] = collections.deque()
        options: dict[str, Any] = {"max_packet_size": max_packet_size} if max_packet_size else {}
        if receive_maximum:
            options["receive_maximum"] = receive_maximum
        self.conn = Connection(
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
            on_idle=self._idle,
            name="central",
            manual_ack=True,
            **options,
        )

    # --- Transport -----------------------------------------------------------------------------

    def start(self, on_message: OnMessage, on_messages: OnMessages | None = None) -> None:
        self._on_message, self._on_messages = on_message, on_messages
        self.conn.start()

    def wait_ready(self, timeout: float) -> bool:
        """Connected and subscribed."""
        return self.subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self.conn.connected.is_set()

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._work.append(("ack", [d.token for d in deliveries]))
        self.conn.wake()

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        """MQTT has no negative acknowledgement: an unacknowledged delivery comes back after a
        reconnect, so reconnect (the persistent session keeps everything else)."""
        if deliveries:
            self._work.append(("reconnect", None))
            self.conn.wake()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self._work.append(("publish", (topic, payload, retain)))
        self.conn.wake()

    def pause(self) -> None:
        """Nothing to do over MQTT (see the module's docstring)."""

    def resume(self) -> None:
        """Nothing to do over MQTT."""

    def stop(self, timeout: float = 5.0) -> None:
        """Send the acknowledgements already queued (bounded wait), then disconnect cleanly."""
        deadline = time.monotonic() + min(timeout, 2.0)
        while self._work and self.connected and time.monotonic() < deadline:
            self.conn.wake()
            time.sleep(0.01)
        self.conn.stop(timeout)

    # --- the connection thread -----------------------------------------------------------------

    def _configure(self, client: Any) -> None:
        client.on_message = self._message
        client.on_subscribe = lambda *_a: self.subscribed.set()

    def _subscribe(self, client: Any) -> None:
        self._generation += 1
        self._work.clear()  # acknowledgements for the previous connection mean nothing now
        self._burst = []  # not handed over, not acknowledged: the broker sends them again
        topics = event_subscriptions(self.group if self.shared and self.conn.negotiated == "5" else None)
        client.subscribe([(topic, 1) for topic in topics])
        log.info("central_subscribed", topics=topics, protocol=self.conn.negotiated)

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        token = (self._generation, message.mid, message.qos)
        delivery = Delivery(message.topic, message.payload, time.time(), bool(message.dup), token=token)
        if self._on_messages is not None:
            self._burst.append(delivery)  # handed over after this loop turn (_idle)
        elif self._on_message is not None:
            self._on_message(delivery)

    def _idle(self, client: Any) -> None:
        if self._burst and self._on_messages is not None:
            burst, self._burst = self._burst, []
            self._on_messages(burst)
        for _ in range(len(self._work)):  # bounded: what is queued now
            kind, arg = self._work.popleft()
            if kind == "ack":
                generation = self._generation
                send_pubacks(client, [mid for gen, mid, qos in arg if gen == generation and qos == 1])
            elif kind == "reconnect":
                log.warning("central_reconnect_for_redelivery")
                client.disconnect()
                return
            else:
                topic, payload, retain = arg
                client.publish(topic, payload, qos=1, retain=retain)
        if self._on_idle is not None:
            self._on_idle(client)
