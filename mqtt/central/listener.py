"""The central side: verify, decrypt, de-duplicate (a small library for central servers).

:class:`CentralProcessor` (:mod:`.processor`, re-exported here) is the sans-MQTT core:
``process(topic, payload) -> AcceptedEvent`` or :class:`EventRejected` (``reason`` one of
``bad_topic``, ``malformed``, ``unknown_device``,
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

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.central.dedupe import DedupeStore, default_state_path
from idstation.mqtt.central.intake import DEFAULT_MAX_BATCH, Intake, default_max_batch
from idstation.mqtt.central.mqtt_transport import SESSION_EXPIRY_MAX, MqttTransport
from idstation.mqtt.central.processor import AcceptedEvent, CentralProcessor, Checked, event_to_json_line
from idstation.mqtt.central.receipts import DEFAULT_INTERVAL, MAX_INTERVAL, ReceiptBatcher, paho_publisher
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.retention import RetentionLoop
from idstation.mqtt.central.store import Store, open_store
from idstation.mqtt.central.transport import ReceiptPump, Transport
from idstation.mqtt.connection import TlsOptions
from idstation.mqtt.errors import EventRejected
from idstation.mqtt.seal import MAX_FRAME, Signer, load_central_private_key

log = structlog.get_logger(__name__)

# SESSION_EXPIRY_MAX (from mqtt_transport): MQTT 5 Session Expiry Interval "never": the broker
# applies its own maximum (mosquitto: persistent_client_expiration); over 3.1.1 the session is
# simply persistent.

__all__ = [
    "DEFAULT_MAX_BATCH",
    "SESSION_EXPIRY_MAX",
    "AcceptedEvent",
    "CentralListener",
    "CentralProcessor",
    "Checked",
    "default_max_batch",
    "event_to_json_line",
]

# The largest PUBLISH the listener accepts (MQTT 5 Maximum Packet Size): a frame plus topic and
# properties. Over MQTT 3.1.1 the broker's max_packet_size must say the same (docs/mqtt.md).
MAX_PACKET = MAX_FRAME + 64 * 1024


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
        receipt_max_interval: float = MAX_INTERVAL,
        max_batch: int | None = None,
        max_wait: float = 0.05,
        retention_days: float | None = None,
        amqp: Sequence[str] | None = None,
        prefetch: int = 1000,
        on_batch: Callable[[int, float], None] | None = None,
        on_delivered: Callable[[], None] | None = None,
        on_receipt: Callable[[str, str, int, int], None] | None = None,
        chip_check: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """``amqp``: consume the shared quorum queue of a RabbitMQ cluster (these node URLs, tried
        in turn; ``prefetch`` bounds what this listener holds) instead of subscribing over MQTT at
        ``broker_url`` (see :mod:`.amqp`). ``max_batch`` (events per store transaction) defaults to
        400, with ``amqp`` at most half of ``prefetch``. ``on_delivered()`` runs after each batch's ``on_event``
        calls. ``on_batch(size, commit_s)`` and ``on_receipt(device_id, key_id, upto, n_above)``
        feed the metrics (:mod:`.metrics`). Over ~60 lines only by its
        keyword parameters (one per ``central listen`` option); the body is the wiring, in order."""
        self.registry = registry if isinstance(registry, Registry) else Registry(registry)
        key = central_key if isinstance(central_key, X25519PrivateKey) else load_central_private_key(central_key)
        self._owns_store = not hasattr(store, "record")
        self.store: Store = _open(store, state_path, group)
        self.processor = CentralProcessor(self.registry, key, self.store, chip_check)
        # receipts (issue 12): signed after the commit, at most one per stream per receipt_interval
        self.receipts = (
            ReceiptBatcher(
                receipt_signer,
                self.store,
                interval=receipt_interval,
                max_interval=receipt_max_interval,
                on_sent=on_receipt,
            )
            if receipt_signer
            else None
        )
        self.group, self.shared = group, shared
        self.transport: Transport
        if amqp:
            from idstation.mqtt.central.amqp import AmqpTransport

            self.transport = AmqpTransport(amqp, prefetch=prefetch)
            self._conn: Any = None
        else:
            self._use_mqtt(
                broker_url,
                client_id,
                tls=tls,
                protocol=protocol,
                username=username,
                password=password,
                session_expiry=session_expiry,
            )
        self.intake = Intake(
            self.processor,
            self.transport,
            on_event=on_event,
            on_reject=on_reject,
            receipts=self.receipts,
            max_batch=max_batch or default_max_batch(prefetch if amqp else None),
            max_wait=max_wait,
            on_batch=on_batch,
            on_delivered=on_delivered,
            capacity=prefetch if amqp else None,
        )
        self._retention = RetentionLoop(self.store, retention_days) if retention_days else None
        # AMQP: receipts from a thread of their own (their store reads must not stall consumption)
        self._pump = ReceiptPump(self.receipts, self.transport) if amqp and self.receipts else None

    def _use_mqtt(self, broker_url: str, client_id: str | None, **options: Any) -> None:
        # default: unique per listener (two clients with one id kick each other off); a stable
        # --client-id keeps the persistent session across listener restarts
        unique = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        client_id = client_id or f"idstation-central-{self.group}-{unique}"
        self.transport = MqttTransport(
            broker_url,
            client_id,
            group=self.group,
            shared=self.shared,
            max_packet_size=MAX_PACKET,
            on_idle=self._publish_receipts,
            **options,
        )
        self._conn = self.transport.conn
        self.subscribed = self.transport.subscribed

    def start(self) -> None:
        self.intake.start()
        self.transport.start(self.intake.on_message, on_messages=self.intake.on_messages)
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
