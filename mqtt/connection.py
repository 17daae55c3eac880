"""The MQTT connection driver shared by the device publisher and the central listener.

A thin I/O layer around paho-mqtt 2.x: broker URLs (``mqtt://host:port``, ``mqtts://host:port``),
TLS/mTLS options, MQTT 5 with a fallback to 3.1.1 (``protocol="auto"``: brokers such as amqtt
0.12 refuse MQTT 5), and a connection thread that reconnects with exponential backoff and full
jitter. Every connection attempt uses a fresh paho client, so paho's in-memory queue never
re-sends anything by itself: the owner (the outbox) decides what is sent after a reconnect.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from idstation.mqtt.errors import PublishError

log = structlog.get_logger(__name__)

PROTOCOLS = ("auto", "5", "3.1.1")
_READS_PER_TURN = 256  # packets read from the client's buffer per loop turn

__all__ = ["PROTOCOLS", "Backoff", "BrokerUrl", "Connection", "TlsOptions", "parse_broker_url"]


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerUrl:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; anything else is a :class:`PublishError`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise PublishError("broker URL: bad port") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise PublishError("broker URL must be mqtt://host:port or mqtts://host:port")
    tls = parts.scheme == "mqtts"
    return BrokerUrl(parts.hostname, port or (8883 if tls else 1883), tls)


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS for ``mqtts://``: the CA that signed the broker, and a client certificate for mTLS."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_no_hostname_check: bool = False

    def context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()
        except (OSError, ssl.SSLError) as exc:
            raise PublishError(f"cannot load the CA file: {type(exc).__name__}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file:
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise PublishError(f"cannot load the client certificate: {type(exc).__name__}") from None
        if self.insecure_no_hostname_check:
            ctx.check_hostname = False
        return ctx


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog), capped."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        delay = self._rng.uniform(0, min(self.cap, self.base * (2**self.attempt)))
        self.attempt = min(self.attempt + 1, 30)
        return max(delay, self.base / 4)

    def reset(self) -> None:
        self.attempt = 0


class Connection:
    """Owns the connection thread. Callbacks run on that thread.

    ``on_connect(client)`` runs once per successful CONNACK; ``on_idle(client)`` after every loop
    turn while connected; ``on_disconnect()`` after a connection ends. ``configure(client)`` sets
    the will, message and publish callbacks on each fresh client.
    """

    def __init__(
        self,
        url: BrokerUrl,
        client_id: str,
        *,
        protocol: str = "auto",
        tls: TlsOptions | None = None,
        keepalive: int = 30,
        clean_start: bool = True,
        session_expiry: int = 0,
        username: str | None = None,
        password: str | None = None,
        configure: Callable[[Any], None] | None = None,
        on_connect: Callable[[Any], None] | None = None,
        on_idle: Callable[[Any], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        before_disconnect: Callable[[Any], None] | None = None,
        backoff: Backoff | None = None,
        name: str = "mqtt",
        connack_timeout: float = 5.0,
        manual_ack: bool = False,
        max_packet_size: int | None = None,
        receive_maximum: int | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise TypeError(f"protocol must be one of {PROTOCOLS}")
        self.url, self.client_id, self.protocol, self.tls = url, client_id, protocol, tls
        self.keepalive, self.clean_start, self.session_expiry = keepalive, clean_start, session_expiry
        self.username, self.password = username, password
        self._configure, self._on_connect, self._on_idle = configure, on_connect, on_idle
        self._on_disconnect, self._before_disconnect = on_disconnect, before_disconnect
        self.backoff = backoff or Backoff()
        self.name = name
        self.connack_timeout = connack_timeout
        self.idle_s = 0.05
        self.manual_ack = manual_ack
        # MQTT 5 Maximum Packet Size (CONNECT): the broker never sends a larger packet to this client.
        # MQTT 3.1.1 has no such field: there the broker's own max_packet_size is the only cap.
        self.max_packet_size = max_packet_size
        # MQTT 5 Receive Maximum (CONNECT): how many QoS 1/2 PUBLISHes the broker may have in flight
        # to this client before PUBACKs come back (None: the protocol's default, 65,535).
        self.receive_maximum = receive_maximum
        self.negotiated: str | None = None  # "5" or "3.1.1" once connected
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._try_v5 = protocol != "3.1.1"
        self.connects = 0
        self._ssl_ctx = tls.context() if (url.tls and tls) else (ssl.create_default_context() if url.tls else None)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"idstation-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    @property
    def client(self) -> Any:
        return self._client if self.connected.is_set() else None

    # --- the thread ------------------------------------------------------------------------------

    def _new_client(self, v5: bool) -> Any:
        import paho.mqtt.client as mqtt
        from idstation.mqtt.paho_client import BufferedClient

        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        kwargs: dict[str, Any] = {
            "client_id": self.client_id,
            "protocol": proto,
            "reconnect_on_failure": False,
            "manual_ack": self.manual_ack,
        }
        if not v5:
            kwargs["clean_session"] = self.clean_start
        client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        if self._ssl_ctx is not None:
            client.tls_set_context(self._ssl_ctx)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self._configure:
            self._configure(client)
        return client

    def _connect_once(self, v5: bool) -> tuple[Any, str]:
        """Connect and wait for CONNACK. Returns (client, "ok" | "refused" | "protocol" | "error")."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = self._new_client(v5)
        result: dict[str, Any] = {}

        def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            result["rc"] = reason

        client.on_connect = on_connect
        kwargs: dict[str, Any] = {"keepalive": self.keepalive}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry
            if self.max_packet_size:
                props.MaximumPacketSize = self.max_packet_size
            if self.receive_maximum:
                props.ReceiveMaximum = self.receive_maximum
            kwargs["clean_start"] = self.clean_start
            kwargs["properties"] = props
        try:
            client.connect(self.url.host, self.url.port, **kwargs)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.info("mqtt_connect_failed", conn=self.name, broker=str(self.url), error=type(exc).__name__)
            _close(client)
            return client, "error"
        deadline = time.monotonic() + self.connack_timeout
        while "rc" not in result and time.monotonic() < deadline and not self._stop.is_set():
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
        rc = result.get("rc")
        if rc is None:
            _close(client)
            return client, "protocol" if v5 else "error"
        if rc.is_failure:
            _close(client)
            value = getattr(rc, "value", 0)
            log.warning("mqtt_connect_refused", conn=self.name, reason=str(rc))
            return client, "protocol" if v5 and value in (1, 0x84) else "refused"
        return client, "ok"

    def _run(self) -> None:
        while not self._stop.is_set():
            v5 = self._try_v5
            client, outcome = self._connect_once(v5)
            if outcome == "protocol" and self.protocol == "auto":
                log.info("mqtt_protocol_fallback", conn=self.name, to="3.1.1")
                self._try_v5 = False
                continue
            if outcome != "ok":
                if self.protocol == "auto" and not v5 and self.negotiated is None:
                    self._try_v5 = True  # 3.1.1 never worked either: the broker may just be down
                self._stop.wait(self.backoff.next_delay())
                continue
            self.negotiated = "5" if v5 else "3.1.1"
            self._client = client
            self.backoff.reset()
            self.connects += 1
            self.connected.set()
            log.info("mqtt_connected", conn=self.name, broker=str(self.url), protocol=self.negotiated)
            try:
                self._session(client)
            except Exception as exc:  # supervisor of the connection thread: log, reconnect, never die
                log.error("mqtt_session_failed", conn=self.name, error=type(exc).__name__)
            if not self._stop.is_set():
                self._stop.wait(self.backoff.next_delay())
        self._client = None

    def wake(self) -> None:
        """Make the connection thread run ``on_idle`` now (e.g. an event was just stored)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _turn(self, client: Any) -> Any:
        """One event-loop turn: like paho's ``loop()``, but also woken by :meth:`wake`."""
        import paho.mqtt.client as mqtt

        sock = client.socket()
        if sock is None:
            return mqtt.MQTT_ERR_NO_CONN
        buffered = client.buffered()  # whole packets may wait in the client's read buffer
        try:
            readable, writable, _ = select.select(
                [sock, self._wake_r], [sock] if client.want_write() else [], [], 0 if buffered else self.idle_s
            )
        except (OSError, ValueError):
            return mqtt.MQTT_ERR_CONN_LOST
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 4096)
        if sock in readable or buffered:
            # paho handles one packet per loop_read() when it has nothing outgoing: go on while
            # the buffer holds more (bounded, so on_idle — acknowledgements — runs between)
            for _ in range(_READS_PER_TURN):
                rc = client.loop_read()
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    return rc
                if not client.buffered():
                    break
        if sock in writable or client.want_write():
            rc = client.loop_write()
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                return rc
        return client.loop_misc()

    def _session(self, client: Any) -> None:
        import paho.mqtt.client as mqtt

        try:
            if self._on_connect:
                self._on_connect(client)
            while not self._stop.is_set():
                if self._turn(client) != mqtt.MQTT_ERR_SUCCESS:
                    break
                if self._on_idle:
                    self._on_idle(client)
        finally:
            self.connected.clear()
            if self._stop.is_set():
                if self._before_disconnect:
                    self._before_disconnect(client)
                _disconnect_cleanly(client)
            else:
                log.warning("mqtt_disconnected", conn=self.name, broker=str(self.url))
            _close(client)
            if self._on_disconnect:
                self._on_disconnect()


def _close(client: Any) -> None:
    """Close the client's network socket and its wake-up socket pair (paho leaves both to the GC)."""
    try:
        reset = getattr(client, "_reset_sockets", None)  # paho 2.x: closes the socket and the pair
        if reset is not None:
            reset()
            return
        sock = client.socket()
        if sock is not None:
            sock.close()
    except OSError:
        pass


def _disconnect_cleanly(client: Any) -> None:
    """Send DISCONNECT (so the broker does not publish the will) and flush it."""
    import paho.mqtt.client as mqtt

    try:
        client.disconnect()
        for _ in range(20):
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
    except (OSError, ValueError):
        pass
