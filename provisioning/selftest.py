"""``idstation selftest``: is this box ready for the counter? A pass/fail table and an exit code.

Checks (each independent; one failing never stops the others):

- identity: provisioned, certificate valid and not about to expire
- reader:   a reader is present and a card on it answers SELECT of the eMRTD application
- camera:   frames arrive and a QR test card in view decodes
- broker:   TLS handshake with the device certificate, a signed heartbeat published and PUBACKed
- clock:    synchronised (systemd-timesyncd/chrony via timedatectl, else the kernel's NTP state;
            "unknown" when nothing here can tell: reported, not failed)
- disk:     free space on the state directory's filesystem
- outbox:   the SQLite outbox passes ``PRAGMA quick_check`` (absent before the first run: fine)

Hardware comes in as factories (selftest_devices.py builds them from ``--reader``/``--camera``),
so the checks run against simulated hardware as well as the real one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from idstation.hal.errors import IdstationError
from idstation.mqtt.enrolment.session import MqttSession
from idstation.provisioning.identity import load_identity
from idstation.provisioning.selftest_devices import ReaderFactory

if TYPE_CHECKING:
    from idstation.hal.ports import Camera, CardReader

log = structlog.get_logger(__name__)

EMRTD_SELECT = bytes.fromhex("00A4040C07A0000002471001")
MIN_FREE_BYTES = 200 * 1024 * 1024
CERT_WARN_DAYS = 14


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    status: str = ""  # pass, fail, unknown, skipped

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "status": self.status or self._status()}

    def _status(self) -> str:
        return "pass" if self.ok else "fail"


@dataclass(frozen=True, slots=True)
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}

    def table(self) -> str:
        width = max((len(c.name) for c in self.checks), default=6)
        lines = [f"{'check':<{width}}  result   detail", f"{'-' * width}  -------  {'-' * 40}"]
        for c in self.checks:
            status = (c.status or ("pass" if c.ok else "fail")).upper()
            lines.append(f"{c.name:<{width}}  {status:<7}  {c.detail}")
        lines.append(f"\n{'ALL PASSED' if self.ok else 'FAILED'}: {sum(c.ok for c in self.checks)}/{len(self.checks)}")
        return "\n".join(lines)


def guarded(name: str, fn: Callable[[], Check]) -> Check:
    """Run one check; our own errors become a failed check naming the error class and message."""
    try:
        return fn()
    except IdstationError as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")
    except (OSError, ImportError) as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def check_identity(state_dir: Path, now: datetime | None = None) -> Check:
    identity = load_identity(state_dir)
    left = identity.cert_not_after - (now or datetime.now(UTC))
    detail = f"{identity.device_id} at {identity.site}/{identity.counter}, certificate valid {left.days} more days"
    if left.total_seconds() <= 0:
        return Check("identity", False, f"{identity.device_id}: certificate expired")
    if left.days < CERT_WARN_DAYS:
        return Check("identity", False, detail + ": run `idstation provision renew`")
    return Check("identity", True, detail)


def check_reader(make_reader: Callable[[], CardReader], timeout: float = 5.0) -> Check:
    reader = make_reader()
    try:
        missing = _missing_reader(reader, make_reader.wanted if isinstance(make_reader, ReaderFactory) else None)
        if missing:
            return Check("reader", False, missing)
        conn = reader.wait_for_card(timeout)
        if conn is None:
            return Check("reader", False, f"reader {reader.name!r} present, but no card within {timeout:.0f} s")
        try:
            _data, sw = conn.transmit(EMRTD_SELECT)
        finally:
            conn.close()
    finally:
        reader.close()
    if sw != 0x9000:
        return Check("reader", False, f"card answered SELECT eMRTD with SW {sw:04X}")
    return Check("reader", True, f"{reader.name}: card answers (SELECT eMRTD 9000)")


def _missing_reader(reader: CardReader, wanted: str | None) -> str:
    """A reason when a PC/SC reader is not there ('' when present or not listable)."""
    list_readers = getattr(reader, "readers", None)
    if not callable(list_readers):
        return ""
    names = list_readers()
    matching = [n for n in names if wanted is None or wanted.lower() in n.lower()]
    if matching:
        return ""
    found = ", ".join(names) if names else "none"
    return f"no PC/SC reader{f' matching {wanted!r}' if wanted else ''} (readers: {found})"


def check_camera(make_camera: Callable[[], Camera], expect: str | None = None, timeout: float = 10.0) -> Check:
    from idstation.agent.qr.decode import QrDecoder

    camera, decoder = make_camera(), QrDecoder()
    frames, deadline = 0, time.monotonic() + timeout
    camera.start()
    try:
        while time.monotonic() < deadline and frames < 50:
            frame = camera.read(min(2.0, max(deadline - time.monotonic(), 0.0)))
            if frame is None:
                continue
            frames += 1
            hit = decoder.decode(frame)
            if hit is not None and (expect is None or hit.text == expect):
                return Check("camera", True, f"{frames} frame(s), QR test card decoded")
    finally:
        camera.stop()
    if frames == 0:
        return Check("camera", False, f"no frames within {timeout:.0f} s")
    return Check("camera", False, f"{frames} frame(s) but no QR test card decoded: show the card, check focus")


def check_broker(state_dir: Path, url: str | None = None, timeout: float = 10.0) -> Check:
    from idstation.mqtt.events import EventBuilder
    from idstation.mqtt.seal import Signer
    from idstation.mqtt.topics import topic_for

    identity = load_identity(state_dir)
    access = identity.broker_access(f"{identity.device_id}-selftest", url=url)
    builder = EventBuilder(
        identity.device_id,
        identity.site,
        identity.counter,
        Signer(identity.signing_key),
        identity.central_public_key,
        boot_id=str(uuid.uuid4()),  # its own sequence stream: never collides with the daemon's seq
    )
    event = builder.build("heartbeat", seq=0, info={"selftest": True})
    started = time.monotonic()
    with MqttSession(access, timeout=timeout) as session:
        session.publish(topic_for(identity.site, identity.counter, "heartbeat"), event.frame)
    ms = (time.monotonic() - started) * 1000
    return Check("broker", True, f"{access.url}: TLS ok, heartbeat acknowledged ({ms:.0f} ms)")


def clock_state() -> str:
    """'synchronised', 'not synchronised' or 'unknown'."""
    timedatectl = shutil.which("timedatectl")
    if timedatectl:
        try:
            out = subprocess.run(
                [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                return "synchronised" if out.stdout.strip() == "yes" else "not synchronised"
        except (OSError, subprocess.TimeoutExpired):
            pass
    from idstation.mqtt.clock import clock_synced

    return "synchronised" if clock_synced() else "unknown"


def check_clock(state: Callable[[], str] = clock_state) -> Check:
    result = state()
    if result == "synchronised":
        return Check("clock", True, "synchronised (NTP)")
    if result == "not synchronised":
        return Check("clock", False, "not synchronised: check NTP (timedatectl timesync-status)")
    return Check("clock", True, "unknown: no time-sync service answers here; kernel clock not marked synced", "unknown")


def check_disk(state_dir: Path, min_free: int = MIN_FREE_BYTES) -> Check:
    probe = state_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_mb = usage.free // (1024 * 1024)
    if usage.free < min_free:
        return Check("disk", False, f"{free_mb} MB free on {probe}: below {min_free // (1024 * 1024)} MB")
    return Check("disk", True, f"{free_mb} MB free ({100 * usage.free // max(usage.total, 1)}%)")


def check_outbox(path: Path) -> Check:
    if not path.exists():
        return Check("outbox", True, "no outbox yet (the daemon creates it)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            result = db.execute("PRAGMA quick_check").fetchone()
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    except sqlite3.DatabaseError as exc:
        return Check("outbox", False, f"{path.name}: {exc}")
    if not result or result[0] != "ok":
        return Check("outbox", False, f"{path.name}: integrity check failed")
    size_kb = os.path.getsize(path) // 1024
    return Check("outbox", True, f"{path.name}: integrity ok, {len(tables)} table(s), {size_kb} KB")


@dataclass
class SelftestPlan:
    """What to check and with which hardware (None: the check is skipped)."""

    state_dir: Path
    reader: Callable[[], CardReader] | None = None
    camera: Callable[[], Camera] | None = None
    camera_expect: str | None = None
    broker_url: str | None = None
    outbox: Path | None = None
    skip: frozenset[str] = frozenset()


def run_selftest(plan: SelftestPlan) -> Report:
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("identity", lambda: check_identity(plan.state_dir)),
        ("reader", lambda: check_reader(plan.reader) if plan.reader else _skipped("reader")),
        ("camera", lambda: check_camera(plan.camera, plan.camera_expect) if plan.camera else _skipped("camera")),
        ("broker", lambda: check_broker(plan.state_dir, plan.broker_url)),
        ("clock", check_clock),
        ("disk", lambda: check_disk(plan.state_dir)),
        ("outbox", lambda: check_outbox(plan.outbox or plan.state_dir / "outbox.sqlite")),
    ]
    checks = []
    for name, fn in steps:
        check = _skipped(name) if name in plan.skip else guarded(name, fn)
        if isinstance(check, Check) and name == "broker" and not check.ok and "NotProvisioned" in check.detail:
            check = Check("broker", False, "not provisioned: no certificate to connect with")
        checks.append(check)
        log.info("selftest_check", check=name, ok=check.ok)
    return Report(checks)


def _skipped(name: str) -> Check:
    return Check(name, True, "skipped", "skipped")


__all__ = [
    "Check",
    "Report",
    "SelftestPlan",
    "check_broker",
    "check_camera",
    "check_clock",
    "check_disk",
    "check_identity",
    "check_outbox",
    "check_reader",
    "run_selftest",
]
