"""``idstation demo``: the whole system on one machine, no hardware, no services.

Everything lives in a temporary directory and on 127.0.0.1: an embedded broker (mosquitto when
installed, else amqtt, which speaks MQTT 3.1.1 only), a throwaway fleet CA, central key and
device identity, the agent with the simulated reader and camera presenting the built-in test
citizens, and the central listener, which verifies, decrypts and de-duplicates each event. Each
identity event the centre accepts is printed (human lines, or with ``--json`` exactly the lines
``idstation central listen --json`` prints), then a summary. ``--outage`` stops the broker while
cards are still being read and starts it again: the durable outbox buffers and catches up.
Logs go to stderr. Exit 0 when every tap arrived verified.

``--keep-dir DIR`` runs in DIR instead and keeps it, so an outside verifier can use what the
demo made: ``central_key.pem`` (the centre's X25519 key, ``--key``), ``central.pub.pem``,
``receipt_key.pem`` (signs receipts), ``registry/`` (the enrolled box), ``central.sqlite`` (the
centre's state), ``box/`` (the box's identity and outbox), ``fleet-ca/``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from idstation.agent.exitcodes import Exit

log = structlog.get_logger(__name__)

SITE, COUNTER = "demo-site", "counter-01"


@dataclass
class Tally:
    """What the centre saw, updated on the listener's thread."""

    taps: int
    accepted: list[Any] = field(default_factory=list)
    verified: int = 0
    duplicates: int = 0
    rejected: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def summary(self) -> dict[str, Any]:
        return {
            "taps": self.taps,
            "accepted": len(self.accepted),
            "duplicates": self.duplicates,
            "lost": max(0, self.taps - len(self.accepted)),
        }


def run_demo(
    taps: int = 5,
    outage: bool = False,
    as_json: bool = False,
    broker: str = "auto",
    timeout: float = 90.0,
    *,
    keep_dir: str | Path | None = None,
) -> int:
    from idstation.hal.errors import IdstationError

    started = time.monotonic()
    opts = _Options(taps, outage, as_json, broker, started + timeout)
    if keep_dir is not None:
        where = Path(keep_dir)
        if where.exists() and (not where.is_dir() or any(where.iterdir())):
            print(f"demo: --keep-dir {where} exists and is not an empty directory", file=sys.stderr)
            return Exit.USAGE
        where.mkdir(parents=True, exist_ok=True)
    holder = (
        contextlib.nullcontext(str(keep_dir))
        if keep_dir is not None
        else tempfile.TemporaryDirectory(prefix="idstation-demo-")
    )
    with holder as tmp:
        try:
            return _demo(Path(tmp), opts, started)
        except IdstationError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return Exit.INTERNAL
        finally:
            if keep_dir is not None:
                print(f"demo: kept {Path(tmp).resolve()} (keys, registry, centre state)", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _Options:
    taps: int
    outage: bool
    as_json: bool
    broker: str
    deadline: float


def _demo(tmp: Path, opts: _Options, started: float) -> int:
    from idstation.agent.sim.broker import LocalBroker

    taps, as_json = opts.taps, opts.as_json
    broker = LocalBroker(tmp / "broker", implementation=opts.broker).start()
    protocol = "auto" if "5" in broker.protocols else "3.1.1"
    _say(as_json, f"broker: {broker.implementation} on {broker.url} (MQTT {protocol})")
    tally = Tally(taps)
    listener = agent_run = gate = None
    try:
        central_key, registry = _provision(tmp, broker.url)
        listener = _listener(tmp, (broker.url, protocol), registry, central_key, tally, as_json=as_json)
        gate = _Gate(broker.port)
        agent_run = _start_agent(tmp, f"mqtt://127.0.0.1:{gate.port}", protocol, taps)
        _say(as_json, f"box: {taps} taps of the built-in test citizens on the simulated reader and camera")
        if opts.outage:
            _outage(broker, gate, listener, tally, opts.deadline, as_json=as_json)
        _wait(tally, taps, opts.deadline)
    finally:
        if agent_run is not None:
            agent_run.stop()
        if listener is not None:
            listener.stop()
        if gate is not None:
            gate.close()
        broker.stop()
    summary = tally.summary()
    if as_json:
        print(json.dumps({"summary": summary}, ensure_ascii=False), flush=True)
    else:
        elapsed = time.monotonic() - started
        print(
            f"summary: {summary['taps']} taps, {summary['accepted']} accepted ({tally.verified} verified), "
            f"{summary['duplicates']} duplicates, {summary['lost']} lost, {elapsed:.1f} s",
            flush=True,
        )
    return Exit.OK if tally.verified == taps and summary["lost"] == 0 else Exit.FAILED


def _say(as_json: bool, text: str) -> None:
    print(text, file=sys.stderr if as_json else sys.stdout, flush=True)


def _provision(tmp: Path, broker_url: str) -> tuple[Any, Any]:
    """A throwaway fleet CA, central key pair, receipt key and an enrolled device identity.

    The keys are written as files, as ``central init-ca`` writes them (``--keep-dir`` keeps them).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from idstation.agent.sim.provision import provision_for_tests
    from idstation.mqtt.central.registry import Registry

    central_key = X25519PrivateKey.generate()
    receipt_key = Ed25519PrivateKey.generate()
    _write_key(tmp / "central_key.pem", central_key)
    _write_key(tmp / "receipt_key.pem", receipt_key)
    registry = Registry(tmp / "registry", create=True)
    provision_for_tests(
        tmp / "box", SITE, COUNTER, tmp / "fleet-ca", central_key.public_key(), broker_url, registry=registry
    )
    receipt_keys = tmp / "box" / "identity" / "receipt_keys.pem"
    if receipt_keys.parent.is_dir() and not receipt_keys.exists():  # provisioning hands it over when it can
        receipt_keys.write_bytes(_public_pem(receipt_key))
    return central_key, registry


def _public_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _write_key(path: Path, key: Any) -> None:
    """A private key as PKCS#8 PEM (0600), its public half beside it for the centre's key."""
    import os

    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    if path.name == "central_key.pem":
        (path.parent / "central.pub.pem").write_bytes(_public_pem(key))


def _listener(tmp: Path, where: tuple[str, str], registry: Any, key: Any, tally: Tally, *, as_json: bool) -> Any:
    from idstation.mqtt.central.listener import CentralListener, event_to_json_line

    url, protocol = where

    def on_event(event: Any) -> None:
        if event.kind not in ("identity", "read_failed"):
            return
        with tally.cond:
            tally.accepted.append(event.event_id)
            private = event.private or {}
            if event.kind == "identity" and private.get("status") == "verified":
                tally.verified += 1
            n = len(tally.accepted)
            tally.cond.notify_all()
        print(event_to_json_line(event) if as_json else _human(n, event), flush=True)

    def on_reject(_topic: str, exc: Any) -> None:
        with tally.cond:
            if getattr(exc, "reason", "") == "duplicate":
                tally.duplicates += 1
            else:
                tally.rejected += 1

    from idstation.agent.sim.profiles import test_trust
    from idstation.mqtt.central.chip_check import ChipCheck
    from idstation.mqtt.central.receipts import load_receipt_signer

    listener = CentralListener(
        url,
        registry,
        key,
        on_event=on_event,
        on_reject=on_reject,
        state_path=tmp / "central.sqlite",
        protocol=protocol,
        receipt_signer=load_receipt_signer(tmp / "receipt_key.pem"),
        chip_check=ChipCheck(test_trust()),  # the centre re-verifies the chip with its own CSCA (the test one)
    )
    listener.start()
    if not listener.wait_ready(15):
        from idstation.mqtt.errors import PublishError

        raise PublishError("the central listener did not subscribe within 15 s")
    return listener


def _human(n: int, event: Any) -> str:
    """How the centre sees one event: verified, decrypted, with the passive authentication result."""
    h = event.header
    if event.kind == "read_failed":
        return f"#{n} read_failed reason={h.get('reason')} seq={h.get('seq')}"
    private = event.private or {}
    citizen = private.get("citizen") or {}
    checks = private.get("verification") or {}
    passive = (checks.get("passive") or {}).get("result", "-")
    ident = str(citizen.get("id_number") or "")
    masked = ("*" * 8 + ident[-4:]) if ident else "-"
    active = (checks.get("active") or {}).get("result", "-")
    chip = (checks.get("chip") or {}).get("result", "-")
    centre = h.get("centre_verification") or {}
    return (
        f"#{n} {private.get('status', '?'):<12} {citizen.get('full_name', '-')}  ID {masked}  "
        f"access={private.get('access', '-')} passive={passive} active={active} chip={chip}  "
        f"centre={centre.get('passive', '-')}/presence={centre.get('presence', '-')}  "
        f"seq={h.get('seq')} device={h.get('device_id')}"
    )


class _AgentRun:
    """The agent and its daemon loop on a thread (no signal handlers: the demo owns the process)."""

    def __init__(self, daemon: Any, thread: threading.Thread) -> None:
        self.daemon, self.thread = daemon, thread

    def stop(self) -> None:
        self.daemon.agent.stop_event.set()
        self.thread.join(timeout=30)


def _start_agent(tmp: Path, url: str, protocol: str, taps: int) -> _AgentRun:
    from idstation.agent.config import demo_config
    from idstation.agent.daemon import Daemon
    from idstation.agent.sdnotify import Notifier
    from idstation.agent.wiring import build_agent
    from idstation.provisioning.identity import load_identity

    cfg = demo_config(tmp / "box", url, protocol, count=taps, interval_s=0.4, hold_s=0.3, start_delay_s=0.3)
    built = build_agent(cfg, identity=load_identity(cfg.state_dir))
    daemon = Daemon(built.agent, Notifier(environ={}), built.on_stop, built.on_ready)
    thread = threading.Thread(target=daemon.run, name="agent", daemon=True)
    thread.start()
    return _AgentRun(daemon, thread)


def _outage(broker: Any, gate: _Gate, listener: Any, tally: Tally, deadline: float, *, as_json: bool) -> None:
    """After the first event: the box loses the broker, which restarts; cards keep being read.

    The box reaches the broker through ``gate`` (a loopback relay) that stays shut until the
    restarted broker has the central listener subscribed again: amqtt keeps no sessions across a
    restart, so a box that came back first would deliver its backlog to nobody.
    """
    with tally.cond:
        tally.cond.wait_for(lambda: len(tally.accepted) >= 1, max(0.0, deadline - time.monotonic()))
    gate.cut()
    broker.stop()
    _say(as_json, "outage: broker stopped; the box keeps reading into its outbox")
    time.sleep(min(4.0, max(0.0, deadline - time.monotonic() - 20)))
    broker.start()
    listener.wait_ready(min(20.0, max(1.0, deadline - time.monotonic())))
    gate.restore()
    _say(as_json, "outage over: broker back; the box catches up")


class _Gate:
    """A loopback TCP relay the box connects through; ``cut()`` drops and refuses, ``restore()`` reopens."""

    def __init__(self, upstream_port: int) -> None:
        import socket

        self._upstream = upstream_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._socks: list[Any] = []
        threading.Thread(target=self._accept, name="demo-gate", daemon=True).start()

    def _accept(self) -> None:
        import socket

        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: Any, dst: Any) -> None:
        try:
            src.settimeout(None)
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(2)
                sock.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._server.close()


def _wait(tally: Tally, taps: int, deadline: float) -> None:
    with tally.cond:
        tally.cond.wait_for(lambda: len(tally.accepted) >= taps, max(0.0, deadline - time.monotonic()))
