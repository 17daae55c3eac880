"""``idstation central serve``: the HTTP service under uvicorn, optionally with a listener in process.

:class:`ServeOptions` is what the command line parsed; :func:`serve` opens the store, the registry
(watched, so enrolments apply live), the central key and the clients file, builds the app and
runs uvicorn until SIGINT/SIGTERM. :class:`BackgroundServer` runs the same app on a thread, for
the demo and for tests that need a real HTTP server in process.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from idstation.mqtt.central.service.errors import ServiceError

log = structlog.get_logger(__name__)

__all__ = ["BackgroundServer", "ServeOptions", "parse_listen", "serve"]


@dataclass(frozen=True)
class ServeOptions:
    store: str
    registry: Path
    key: Path
    listen: str
    clients: Path
    tls_cert: Path | None = None
    tls_key: Path | None = None
    freshness_s: float = 600.0
    with_listener: bool = False
    broker: str | None = None


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServiceError("--listen is HOST:PORT")
    return host, int(port)


def uvicorn_config(app: Any, host: str, port: int, *, tls: tuple[Path, Path] | None = None) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our structlog set-up; uvicorn's access log is replaced by RequestLog
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,  # streams never end by themselves
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )


def open_parts(opts: ServeOptions) -> tuple[Any, Any, Any, Any]:
    """(store, registry, central key, clients) for ``opts``; typed errors for bad inputs."""
    from idstation.mqtt.central.registry import Registry
    from idstation.mqtt.central.service.clients import ClientsFile
    from idstation.mqtt.central.store import open_store
    from idstation.mqtt.seal import load_central_private_key

    key = load_central_private_key(opts.key)
    registry = Registry(opts.registry)
    clients = ClientsFile(opts.clients)
    clients.clients()  # a malformed file fails now, not on the first request
    store = open_store(opts.store, migrate=True)  # like `central listen`: either may start first
    return store, registry, key, clients


def serve(opts: ServeOptions) -> None:
    """Run the service until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn
    from idstation.mqtt.central.service.app import build_app

    host, port = parse_listen(opts.listen)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        raise ServiceError("--tls-cert and --tls-key go together")
    if opts.with_listener and not opts.broker:
        raise ServiceError("--with-listener needs --broker URL")
    store, registry, key, clients = open_parts(opts)
    listener = None
    try:
        if opts.with_listener:
            listener = start_listener(opts.broker or "", registry, key, store, receipt_signer=_receipts(opts.key))
        app = build_app(store, registry, key, clients, freshness_s=opts.freshness_s)
        tls = (opts.tls_cert, opts.tls_key) if opts.tls_cert and opts.tls_key else None
        sock = _bind(host, port)  # a taken port is an OSError here, not uvicorn's sys.exit
        log.info("service_starting", host=host, port=port, tls=bool(tls), listener=bool(listener))
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler it
        # found: a no-op one makes SIGTERM a clean exit (0) instead of death by signal
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            uvicorn.Server(uvicorn_config(app, host, port, tls=tls)).run(sockets=[sock])
        finally:
            signal.signal(signal.SIGTERM, previous)
        log.info("service_stopped")
    finally:
        if listener is not None:
            listener.stop()
        store.close()


def _receipts(central_key: Path) -> Any:
    """``receipt_key.pem`` beside the central key, as ``central listen`` finds it (absent: receipts
    off, which :func:`receipt_signer_for` logs)."""
    from idstation.mqtt.central.receipts import receipt_signer_for

    return receipt_signer_for(central_key)


def _bind(host: str, port: int) -> Any:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def start_listener(
    broker: str, registry: Any, key: Any, store: Any, *, receipt_signer: Any = None, timeout: float = 30.0
) -> Any:
    """A central listener recording into ``store`` on this process's threads (signing receipts with
    ``receipt_signer``, as ``central listen`` does; None: receipts off)."""
    from idstation.mqtt.central.listener import CentralListener

    listener = CentralListener(
        broker, registry, key, on_event=lambda _event: None, store=store, receipt_signer=receipt_signer
    )
    listener.start()
    if not listener.wait_ready(timeout):
        listener.stop()
        raise ServiceError(f"the listener did not subscribe to the broker within {timeout:g} s")
    return listener


class BackgroundServer:
    """The app under uvicorn on a daemon thread (demo, tests); ``stop()`` ends it."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._sock = _bind(host, port)
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self._server = uvicorn.Server(uvicorn_config(app, host, self.port))
        self._thread = threading.Thread(target=self._run, name="http-service", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self, timeout: float = 15.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ServiceError("the HTTP service did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()
