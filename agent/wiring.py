"""Wiring: turn a ``Config`` into a running agent's parts (reader, camera, indicators, sink, chip read).

Every heavy or hardware library is imported inside the function that needs it, so a box imports
only what its configuration uses (picamera2 or V4L2, pyscard or the simulator, never both).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from idstation.agent import flow
from idstation.agent.app import Agent
from idstation.agent.config import Config
from idstation.agent.errors import ConfigError, QrError
from idstation.hal.errors import DeviceError
from idstation.hal.ports import Camera, CardConnection, CardReader

if TYPE_CHECKING:
    from idstation.agent.emrtd.read import ReadResult
    from idstation.mqtt.events import IdentityPrivate

log = structlog.get_logger(__name__)


@dataclass
class Built:
    """An agent and what must run once it is ready / when it stops."""

    agent: Agent
    on_ready: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


# ---- QR --------------------------------------------------------------------------------------------
class QrFinder:
    """Frame → citizen-card QR text, or None (other QR codes are ignored, never logged)."""

    def __init__(self) -> None:
        from idstation.agent.qr.decode import QrDecoder

        self._decoder = QrDecoder()

    def __call__(self, frame: Any) -> str | None:
        from idstation.agent.qr.cccd import parse_cccd

        hit = self._decoder.decode(frame)
        if hit is None:
            return None
        try:
            parse_cccd(hit.text)
        except QrError:
            log.info("qr_not_a_citizen_card")
            return None
        return hit.text


# ---- the chip --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChipRead:
    """One read made for one identity event: the event id was made BEFORE the read, and the Active
    Authentication challenge derived from it (``challenge_for``), so the chip's signature that the
    event forwards proves to the centre that the card was on the box for this event (issue 13)."""

    event_id: str
    result: ReadResult = field(repr=False)

    def __getattr__(self, name: str) -> Any:  # reads as the ReadResult it wraps (verdict, citizen, ...)
        if name == "result":
            raise AttributeError(name)
        return getattr(self.result, name)


class ChipReader:
    """Reads and verifies the chip with the keys the QR gives: ``(verdict, ChipRead)``."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.trust = load_trust(cfg)

    def __call__(self, conn: CardConnection, qr_text: str) -> tuple[str, object]:
        from idstation.agent.access import keys_from_qr
        from idstation.agent.emrtd.active_auth import challenge_for
        from idstation.agent.emrtd.read import ReadPolicy, read_document
        from idstation.mqtt.clock import uuid7

        event_id = uuid7()  # the identity event's id, made first: the AA challenge is bound to it
        policy = ReadPolicy(with_face=self.cfg.reader.face)
        result = read_document(
            conn, keys_from_qr(qr_text), policy, trust=self.trust, aa_challenge=challenge_for(event_id)
        )
        return classify(result), ChipRead(event_id, result)


def classify(result: Any) -> str:
    """The flow's verdict for a completed read, from the read's typed verdict (never from text)."""
    from idstation.agent.emrtd.verdict import Verdict

    verdict = result.verdict
    if verdict is Verdict.VERIFIED:
        return flow.VERDICT_VERIFIED
    if verdict is Verdict.UNKNOWN_CSCA:
        return flow.VERDICT_UNKNOWN_CSCA
    return flow.VERDICT_FAILED


def load_trust(cfg: Config) -> Any:
    """The CSCA trust store: the configured directory, plus the test CSCA when asked (demo/tests)."""
    from idstation.agent.emrtd.read import load_trust as load

    csca_dir: Path | None = cfg.csca_dir
    if csca_dir is not None and not csca_dir.is_dir():
        log.warning("csca_dir_missing", path=str(csca_dir), effect="every chip reads as unknown_csca")
        csca_dir = None
    if cfg.trust_test_csca:  # demo and tests: the simulator's test CSCA, handed in by the wiring only
        from idstation.agent.sim.profiles import test_csca_pem

        return load(csca_dir, extra_pem=test_csca_pem())
    return load(csca_dir)


# ---- events ----------------------------------------------------------------------------------------
def identity_private(status: str, qr_text: str | None, result: ChipRead | ReadResult | None) -> IdentityPrivate:
    """The sealed part of an identity event, as the wire model (``mqtt.events.IdentityPrivate``)."""
    from idstation.agent.qr.cccd import parse_cccd
    from idstation.mqtt.events import IdentityPrivate

    if isinstance(result, ChipRead):
        result = result.result

    qr = parse_cccd(qr_text).to_json() if qr_text else None
    if result is None:  # the chip could not be read: the QR alone, unverified
        return IdentityPrivate(
            source="qr_only",
            status=status,
            citizen=qr or {},
            verification={"status": status, "reason": flow.CHIP_UNREADABLE},
            qr=qr,
        )
    doc = result.to_json()
    return IdentityPrivate(
        source="chip",
        status=status,
        citizen=result.citizen or {},
        verification={**result.verification, "status": status},
        qr=qr,
        access=result.access,
        face=doc.get("face"),
        data_groups={f"DG{n}": base64.b64encode(data).decode() for n, data in sorted(result.data_groups.items())},
        ef_sod=base64.b64encode(result.ef_sod).decode() if result.ef_sod else None,
        aa_signature=base64.b64encode(result.aa_signature).decode() if result.aa_signature else None,
    )


class MqttSink:
    """The agent's EventSink on top of mqtt.client.Publisher (durable outbox, signed, sealed)."""

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher

    def identity(self, status: str, qr_text: str | None, result: ChipRead | ReadResult | None) -> None:
        event_id = None
        if isinstance(result, ChipRead):  # the event takes the id its AA challenge was derived from
            event_id, result = result.event_id, result.result
        private = identity_private(status, qr_text, result)
        self.publisher.submit_identity(private.model_dump(mode="json", exclude_none=True), event_id=event_id)

    def read_failed(self, reason: str) -> None:
        self.publisher.submit_read_failed(reason, flow.MESSAGES.get(reason, ""))

    def status(self, doc: dict[str, Any]) -> None:
        self.publisher.set_status(doc, state="online")

    def health(self) -> dict[str, Any]:
        stats = self.publisher.stats()
        outbox = stats.get("outbox") or {}
        depth = outbox.get("total") if isinstance(outbox, dict) else outbox
        return {"connected": stats.get("connected"), "protocol": stats.get("protocol"), "depth": depth, **outbox}

    def close(self) -> None:
        self.publisher.stop(timeout=5.0)


def build_publisher(cfg: Config, ident: Any) -> Any:
    """The device's Publisher from its provisioned identity (``provisioning.identity.DeviceIdentity``,
    loaded by the caller: the daemon's wiring does not import provisioning) and the broker configuration."""
    from idstation.mqtt.client import Publisher, PublisherConfig, TlsOptions

    url = cfg.broker.url or ident.broker_url
    if not url:
        raise ConfigError("broker.url: not set and binding.json names no broker")
    tls = None
    if url.startswith("mqtts://"):
        tls = TlsOptions(
            ca_file=str(cfg.broker.ca_file or ident.fleet_ca_path),
            cert_file=str(cfg.broker.cert_file or ident.tls_cert_path),
            key_file=str(cfg.broker.key_file or ident.tls_key_path),
        )
    publisher = Publisher(
        PublisherConfig(
            broker_url=url,
            device_id=ident.device_id,
            site=cfg.site or ident.site,
            counter=cfg.counter or ident.counter,
            signing_key=ident.signing_key,
            central_public_key=ident.central_public_key,
            outbox_path=cfg.outbox_path,
            key_id=ident.key_id,
            tls=tls,
            protocol=cfg.broker.protocol,
            max_bytes=cfg.outbox.max_bytes,
            keepalive=cfg.broker.keepalive_s,
            backlog_rate_bytes=cfg.outbox.backlog_rate_per_s * 2000,
            # the centre's receipt keys (provisioning.identity.RECEIPT_KEYS_FILE); absent: receipts off, logged
            receipt_keys=ident.identity_dir / "receipt_keys.pem",
            receipt_timeout_s=cfg.outbox.receipt_timeout_s,
        )
    )
    publisher.start()
    return publisher


def tune_malloc() -> None:
    """Keep glibc from hoarding freed frame buffers (512 MB boxes).

    glibc raises its mmap threshold after a large block is freed, so later camera-frame-sized
    arrays come from the heap and are never given back; fixing the threshold at 128 KiB and
    limiting arenas to 2 keeps the resident size near the live size (measured: 178 -> 85 MB
    with the simulated camera). Same as MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or "musl" in name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-3, 131072)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        log.info("malloc_tuning_unavailable")


# ---- devices ---------------------------------------------------------------------------------------
def reader_profile(cfg: Config, reader_names: list[str] | None = None) -> Any:
    """The configured reader profile; ``auto``: the shipped profile matching the reader's name."""
    from idstation.hal.indicator import load_reader_profile, profile_for_reader_name

    if cfg.reader.profile != "auto":
        return load_reader_profile(cfg.reader.profile)
    names = [n for n in (reader_names or []) if cfg.reader.name in n]
    if cfg.reader.kind == "sim" or not names:
        return load_reader_profile("generic")
    return profile_for_reader_name(names[0])


def build_reader(cfg: Config) -> tuple[CardReader, Any]:
    """The PC/SC reader and its profile (sizes for extended-length APDUs, LED/buzzer escapes)."""
    from idstation.hal.reader_pcsc import PcscReader

    names: list[str] = []
    if cfg.reader.profile == "auto":
        probe = PcscReader(cfg.reader.name or None)
        try:
            names = probe.readers()
        except DeviceError as exc:  # pcscd down or no reader yet: the worker retries, the profile stays generic
            log.warning("reader_not_listed", error=str(exc))
        finally:
            probe.close()
    profile = reader_profile(cfg, names)
    log.info("reader_profile", profile=profile.key, extended_length=profile.extended_length)
    reader = PcscReader(
        cfg.reader.name or None, extended_length=profile.extended_length, max_response=profile.max_response
    )
    return reader, profile


def camera_source(cfg: Config) -> Any:
    """The configured camera in the one device-source grammar (``hal.sources``)."""
    from idstation.hal.sources import parse_camera

    kind = cfg.camera.kind
    arg = {"picamera2": cfg.camera.profile, "v4l2": cfg.camera.device, "replay": str(cfg.camera.replay_dir or "")}
    if kind == "replay" and cfg.camera.replay_dir is None:
        raise ConfigError("camera.replay_dir: required for camera.kind = replay")
    return parse_camera(f"{kind}:{arg[kind]}" if arg.get(kind) else kind)


def build_camera(cfg: Config) -> Camera | None:
    """The configured real camera (sim cameras come from simulation.py); None for kind = none."""
    from idstation.hal.sources import open_camera

    if cfg.camera.kind == "sim":
        raise ConfigError("camera.kind: sim needs the simulator (reader.kind = sim)")
    return open_camera(camera_source(cfg), fps=10.0, size=cfg.camera.resolution, loop=True)


def build_indicator(cfg: Config, reader: CardReader, profile: Any) -> Any:
    from idstation.hal.indicator import ConsoleIndicator, GpioIndicator, MultiIndicator, ReaderIndicator

    items: list[Any] = []
    ind = cfg.indicators
    if ind.console and sys.stderr.isatty():  # under systemd the line is the unit's STATUS instead
        items.append(ConsoleIndicator())
    if ind.reader:
        items.append(ReaderIndicator(reader, profile))
    if any(p is not None for p in (ind.gpio_led_ok, ind.gpio_led_error, ind.gpio_buzzer)):
        try:
            items.append(GpioIndicator(ind.gpio_led_ok, ind.gpio_led_error, ind.gpio_buzzer))
        except (ImportError, OSError, DeviceError) as exc:
            log.warning("gpio_unavailable", error=type(exc).__name__)
    return MultiIndicator(items)


def build_agent(cfg: Config, publisher: Any = None, *, identity: Any = None) -> Built:
    """Everything ``idstation run`` needs, from the configuration (and a provisioned state dir)."""
    if publisher is None and identity is None:
        raise TypeError("build_agent needs the device identity (provisioning.identity.load_identity) or a publisher")
    sink = MqttSink(publisher if publisher is not None else build_publisher(cfg, identity))
    try:
        return _build_with_sink(cfg, sink)
    except BaseException:
        sink.close()
        raise


def _build_with_sink(cfg: Config, sink: MqttSink) -> Built:
    series = None
    if cfg.reader.kind == "sim":
        from idstation.agent.sim.simulation import build_simulation

        series, reader, camera = build_simulation(cfg)
        profile = reader_profile(cfg)
    else:
        reader, profile = build_reader(cfg)
        camera = build_camera(cfg)
    indicator = build_indicator(cfg, reader, profile)
    agent = Agent(cfg, reader, camera, indicator, sink, ChipReader(cfg), QrFinder())
    built = Built(agent)
    built.on_stop.append(reader.close)
    if camera is not None:
        built.on_stop.append(camera.stop)
    if series is not None:
        agent.on_outcome = series.outcome
        built.on_ready.append(series.start)
        built.on_stop.insert(0, series.stop)
        built.extras["series"] = series
    return built
