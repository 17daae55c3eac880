"""A small blocking MQTT session for provisioning: connect, subscribe, publish with acknowledgement.

Enrolment, renewal and the self-test exchange a handful of messages and then disconnect, so they
use paho-mqtt directly through this helper rather than the daemon's outbox publisher. Every wait
is bounded; foreign exceptions are mapped to ``BrokerError`` here, at the edge.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from idstation.mqtt.enrolment.errors import BrokerError


@dataclass(frozen=True, slots=True)
class BrokerAccess:
    """Where and how to connect: URL, optional username/password, TLS trust and client certificate."""

    url: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str = ""

    def __repr__(self) -> str:
        return f"BrokerAccess(url={self.url!r}, username={self.username!r}, client_id={self.client_id!r})"

    def with_client_id(self, client_id: str) -> BrokerAccess:
        """The same access with ``client_id`` unless one is set already."""
        return self if self.client_id else dataclasses.replace(self, client_id=client_id)


class MqttSession:
    """One connected paho client (MQTT 3.1.1, clean session); use as a context manager."""

    def __init__(self, access: BrokerAccess, *, timeout: float = 10.0) -> None:
        self.access = access
        self.timeout = timeout
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=1000)
        self._acks: dict[int, threading.Event] = {}
        self._connected = threading.Event()
        self._reason: str = ""
        self._client: Any = None
        self._topics: list[str] = []  # subscribed: renewed after paho reconnects (clean session)

    def __enter__(self) -> MqttSession:
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def connect(self) -> None:
        import paho.mqtt.client as paho
        from idstation.mqtt.connection import parse_broker_url
        from idstation.mqtt.errors import PublishError

        try:
            url = parse_broker_url(self.access.url)
        except PublishError as exc:
            raise BrokerError(str(exc)) from None
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.access.client_id, protocol=paho.MQTTv311)
        client.reconnect_delay_set(min_delay=1, max_delay=10)  # a long-running service comes back soon
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_ack
        client.on_publish = self._on_publish
        if self.access.username is not None:
            client.username_pw_set(self.access.username, self.access.password)
        if url.tls:
            client.tls_set_context(self._tls_context())
        self._client = client
        try:
            client.connect(url.host, url.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"cannot reach broker {url}: {type(exc).__name__}") from None
        client.loop_start()
        if not self._connected.wait(self.timeout) or self._reason:
            self.close()
            raise BrokerError(f"broker {url} refused the connection: {self._reason or 'no CONNACK in time'}")

    def subscribe(self, topic: str) -> None:
        result, mid = self._client.subscribe(topic, qos=1)
        self._wait_ack(result, mid, "SUBACK")
        self._topics.append(topic)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for PUBACK."""
        info = self._client.publish(topic, payload, qos=1)
        self._wait_ack(info.rc, info.mid, "PUBACK")

    def receive(self, timeout: float) -> tuple[str, bytes] | None:
        try:
            return self.messages.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.disconnect()
            client.loop_stop()

    def _tls_context(self) -> ssl.SSLContext:
        access = self.access
        try:
            ctx = ssl.create_default_context(cafile=access.ca_file)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if access.cert_file:
                ctx.load_cert_chain(access.cert_file, access.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"cannot load TLS files: {type(exc).__name__}") from None
        return ctx

    def _wait_ack(self, rc: int, mid: int | None, what: str) -> None:
        if rc != 0 or mid is None:
            raise BrokerError(f"broker connection lost before {what} (rc={rc})")
        event = self._acks.setdefault(mid, threading.Event())
        deadline = time.monotonic() + self.timeout
        if not event.wait(max(deadline - time.monotonic(), 0.0)):
            raise BrokerError(f"no {what} from the broker within {self.timeout:.0f} s")
        self._acks.pop(mid, None)

    def _on_connect(self, client: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._reason = str(reason)
        elif self._connected.is_set():  # paho reconnected (broker restart): a clean session lost our subscriptions
            for topic in self._topics:
                client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with contextlib.suppress(queue.Full):  # a flood on our own topics: drop, the caller times out
            self.messages.put_nowait((message.topic, bytes(message.payload)))

    def _on_ack(self, _c: Any, _u: Any, mid: int, reasons: Any, _props: Any) -> None:
        codes = reasons if isinstance(reasons, list) else [reasons]
        if any(getattr(code, "is_failure", False) for code in codes):
            return  # refused subscription: the waiter times out with a clear message
        self._acks.setdefault(mid, threading.Event()).set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        self._acks.setdefault(mid, threading.Event()).set()
