"""A loopback MQTT broker for demos and tests: :class:`LocalBroker`.

mosquitto (``mosquitto -c FILE`` in the foreground) when installed, else amqtt 0.12 (the
``demo`` extra; MQTT 3.1.1 only) in a subprocess. It listens on 127.0.0.1 on a free port (or the
port given) and can be stopped, killed and restarted on the same port, for outage tests::

    with LocalBroker(tmpdir) as broker:          # plain MQTT
        url = broker.url                          # "mqtt://127.0.0.1:PORT"
    LocalBroker(tmpdir, tls=BrokerTls(ca, cert, key, require_client_cert=True))  # mqtts:// (mTLS)
    LocalBroker(tmpdir, acl=single_listener_acl(registry))                        # topic ACL

The ACL comes from the product's one generator (``mqtt.central.broker_config``): each enrolled
device writes only its own ``idstation/v1/{site}/{counter}/{kind}`` and reads its own receipts; the
centre reads everything and writes receipts. With mTLS the username is the certificate's CN
(``use_identity_as_username``), i.e. the device id.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from idstation.mqtt.errors import PublishError

log = structlog.get_logger(__name__)

__all__ = ["BrokerTls", "LocalBroker", "free_port"]


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback TCP port that is free now, chosen below the kernel's ephemeral range.

    A port handed out by ``bind(0)`` comes from the ephemeral range, where any outgoing connection
    made before the server binds (another test's client, say) can take it; below that range only
    another server choosing the same random port can, which is rare.
    """
    low = _ephemeral_low()
    start = max(10_000, low - 12_000)
    for _ in range(50):  # bounded
        port = random.randrange(start, low) if low - start > 100 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class BrokerTls:
    ca_file: str
    cert_file: str
    key_file: str
    require_client_cert: bool = True


class LocalBroker:
    """A broker process on 127.0.0.1 owned by this object."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        port: int | None = None,
        tls: BrokerTls | None = None,
        acl: str | None = None,
        passwords: dict[str, str] | None = None,
        persistence: bool = True,
        implementation: str = "auto",
        host: str = "127.0.0.1",
    ) -> None:
        """``host``: 127.0.0.1, or an address of a test-made network namespace link (never 0.0.0.0)."""
        self.workdir = Path(workdir)
        self.host = host
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls, self.acl, self.passwords, self.persistence = tls, acl, passwords, persistence
        if implementation == "auto":
            implementation = "mosquitto" if shutil.which("mosquitto") else "amqtt"
        if implementation not in ("mosquitto", "amqtt"):
            raise TypeError("implementation is 'auto', 'mosquitto' or 'amqtt'")
        if implementation == "amqtt" and (tls or acl or passwords):
            raise PublishError("the amqtt fallback broker supports plain MQTT only")
        self.implementation = implementation
        self.protocols = ("5", "3.1.1") if implementation == "mosquitto" else ("3.1.1",)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> LocalBroker:
        if self.running:
            return self
        argv = self._mosquitto_argv() if self.implementation == "mosquitto" else self._amqtt_argv()
        self._log_file = open(self.workdir / "broker.log", "ab")  # noqa: SIM115
        self._proc = subprocess.Popen(argv, stdout=self._log_file, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PublishError(f"the {self.implementation} broker exited at start (see {self.workdir}/broker.log)")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    log.info("local_broker_started", impl=self.implementation, port=self.port)
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise PublishError(f"the {self.implementation} broker did not listen on port {self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): mosquitto saves its persistence file."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Hard stop (SIGKILL): in-memory broker state is lost."""
        self._end(signal.SIGKILL, 5.0)

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def _end(self, sig: int, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration --------------------------------------------------------------------------

    def _mosquitto_argv(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self._mosquitto_conf(), encoding="utf-8")
        return [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]

    def _mosquitto_conf(self) -> str:
        lines = [
            "# generated by idstation LocalBroker (loopback only)",
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
            "max_inflight_messages 100",
            "max_queued_messages 100000",
            "max_queued_bytes 0",
            "set_tcp_nodelay true",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # config, keys and persistence stay readable (domain.md)
        if self.persistence:
            store = self.workdir / "persist"
            store.mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {store}/", "autosave_interval 1"]
        if self.tls:
            lines += [f"cafile {self.tls.ca_file}", f"certfile {self.tls.cert_file}", f"keyfile {self.tls.key_file}"]
            lines += ["tls_version tlsv1.2"]
            if self.tls.require_client_cert:
                lines += ["require_certificate true", "use_identity_as_username true"]
        if self.passwords:
            pwfile = self.workdir / "passwords"
            pwfile.write_text("".join(f"{u}:{p}\n" for u, p in self.passwords.items()), encoding="utf-8")
            subprocess.run(["mosquitto_passwd", "-U", str(pwfile)], check=True, capture_output=True)
            lines += [f"password_file {pwfile}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            aclfile = self.workdir / "acl"
            aclfile.write_text(self.acl, encoding="utf-8")
            lines.append(f"acl_file {aclfile}")
        return "\n".join(lines) + "\n"

    def _amqtt_argv(self) -> list[str]:
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n"
            "  default:\n"
            "    type: tcp\n"
            f"    bind: {self.host}:{self.port}\n"
            "    max_connections: 1000\n"
            "sys_interval: 0\n"
            "auth:\n"
            "  allow-anonymous: true\n"
            "  plugins: ['auth_anonymous']\n"
            "topic-check:\n"
            "  enabled: false\n",
            encoding="utf-8",
        )
        exe = shutil.which("amqtt")
        if exe is None:
            code = "import sys; from amqtt.scripts.broker_script import main; sys.exit(main())"
            return [sys.executable, "-c", code, "-c", str(conf)]
        return [exe, "-c", str(conf)]
