"""The device registry: which devices the central side trusts, under which key, at which counter.

Layout of the registry directory (written by ``idstation central enroll`` / ``revoke`` through
this module, read by ``idstation central listen``)::

    DIR/devices/<device_id>.json   {"device_id", "site", "counter", "key_id",
                                    "public_key_pem", "certificate_pem" (optional), "enrolled_at"}
    DIR/revoked/<device_id>.json   {"device_id", "revoked_at", "reason"}
    DIR/changes.log                one enrolled device id per line, appended after each write

Every write is atomic (temporary file + rename), so a reader never sees half a record. Readers
see an immutable snapshot; a directory whose mtime changed is listed again and only the records
whose files changed are re-read (:mod:`.registry_snapshot`), so enrolments and revocations apply
without a restart and without a full reload. A listener calls :meth:`Registry.watch`: a background
thread refreshes every quarter second and lookups never load on the message thread. An
empty or missing registry trusts nothing. A revoked device stays revoked even if re-enrolled,
until its revocation file is removed.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from idstation.hal.storage import write_atomic
from idstation.mqtt.central.registry_snapshot import MAX_RECORD, Loader, Snapshot, read_small_file
from idstation.mqtt.enrolment.pairing import NAME_RULE
from idstation.mqtt.enrolment.pairing import valid_name as valid_device_name
from idstation.mqtt.errors import RegistryError
from idstation.mqtt.seal import SealError, ed25519_raw, key_id_for, load_verify_key, loads_bounded

log = structlog.get_logger(__name__)

__all__ = ["NAME_RULE", "DeviceRecord", "Registry", "valid_device_name"]


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One enrolled device."""

    device_id: str
    site: str
    counter: str
    key_id: str
    public_key: Ed25519PublicKey = field(repr=False)
    public_key_pem: str = field(repr=False)
    certificate_pem: str | None = field(default=None, repr=False)
    enrolled_at: str = ""
    public_raw: bytes = field(init=False, repr=False, compare=False)  # the key's 32 bytes, for the verifier

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_raw", ed25519_raw(self.public_key))  # once per record, not per event

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "site": self.site,
            "counter": self.counter,
            "key_id": self.key_id,
            "public_key_pem": self.public_key_pem,
            "certificate_pem": self.certificate_pem,
            "enrolled_at": self.enrolled_at,
        }


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _atomic_write(path: Path, data: dict[str, Any]) -> None:
    """A registry record, replaced atomically and durably (the directory entry included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(path, text.encode("utf-8"))


def _public_pem(key: Ed25519PublicKey | str | bytes) -> tuple[Ed25519PublicKey, str]:
    if isinstance(key, Ed25519PublicKey):
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return key, pem.decode("ascii")
    raw = key.encode("ascii") if isinstance(key, str) else key
    try:
        loaded = load_verify_key(raw)
    except SealError as exc:
        raise RegistryError(f"device public key: {exc}") from None
    return loaded, raw.decode("ascii")


def _record_key(data: dict[str, Any]) -> tuple[Ed25519PublicKey, str]:
    """The device's Ed25519 key: ``public_key_pem``, or else an Ed25519 ``certificate_pem``."""
    pem = data.get("public_key_pem")
    if pem:
        return load_verify_key(pem.encode("ascii")), pem
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(data["certificate_pem"].encode("ascii"))
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError("the certificate does not hold an Ed25519 key")
    spki = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, spki.decode("ascii")


class Registry:
    """A registry directory. Thread-safe; lookups reload changed directories automatically."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        self.devices_dir = self.path / "devices"
        self.revoked_dir = self.path / "revoked"
        if create:
            self.devices_dir.mkdir(parents=True, exist_ok=True)
            self.revoked_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._loader = Loader(self.devices_dir, self.revoked_dir, self._read_device)
        self._snap = Snapshot()
        self._watcher: tuple[threading.Event, tuple[threading.Thread, ...]] | None = None

    # --- writing (enrolment tool) -----------------------------------------------------------------

    def add_device(
        self,
        device_id: str,
        site: str,
        counter: str,
        public_key: Ed25519PublicKey | str | bytes,
        *,
        certificate_pem: str | None = None,
        key_id: str | None = None,
    ) -> DeviceRecord:
        """Enrol (or re-key) a device. ``key_id`` defaults to :func:`key_id_for` of the key."""
        for label, value in (("device id", device_id), ("site", site), ("counter", counter)):
            if not valid_device_name(value):
                raise RegistryError(f"{label} must be {NAME_RULE}")
        key, pem = _public_pem(public_key)
        derived = key_id_for(key)
        if key_id is not None and key_id != derived:
            raise RegistryError("key id does not match the public key")
        record = DeviceRecord(device_id, site, counter, derived, key, pem, certificate_pem, _now_iso())
        _atomic_write(self.devices_dir / f"{device_id}.json", record.to_json())
        self._journal(device_id)
        self.revoked_dir.mkdir(parents=True, exist_ok=True)
        log.info("registry_device_added", device_id=device_id, site=site, counter=counter, key_id=derived)
        self._invalidate()
        return record

    def revoke(self, device_id: str, reason: str = "") -> None:
        """Revoke a device: its events are rejected from the next lookup on."""
        if not valid_device_name(device_id):
            raise RegistryError(f"device id must be {NAME_RULE}")
        _atomic_write(
            self.revoked_dir / f"{device_id}.json",
            {"device_id": device_id, "revoked_at": _now_iso(), "reason": reason},
        )
        log.info("registry_device_revoked", device_id=device_id)
        self._invalidate()

    def unrevoke(self, device_id: str) -> None:
        """Remove a revocation (after an investigation cleared the device)."""
        if valid_device_name(device_id):
            (self.revoked_dir / f"{device_id}.json").unlink(missing_ok=True)
            (self.revoked_dir / device_id).unlink(missing_ok=True)
        self._invalidate()

    # --- reading (central listener) ----------------------------------------------------------------

    def lookup(self, device_id: str) -> DeviceRecord | None:
        """The enrolled, non-revoked device with this id, or None."""
        snap = self._current()
        if device_id in snap.revoked:
            return None
        return snap.devices.get(device_id)

    def by_key_id(self, key_id: str, *, include_revoked: bool = False) -> DeviceRecord | None:
        """The enrolled, non-revoked (unless ``include_revoked``) device that holds this key id, or None."""
        snap = self._current()
        record = snap.by_key.get(key_id)
        if record is None or (record.device_id in snap.revoked and not include_revoked):
            return None
        return record

    def is_revoked(self, device_id: str) -> bool:
        return device_id in self._current().revoked

    def known(self, device_id: str) -> bool:
        """Enrolled (revoked or not)."""
        return device_id in self._current().devices

    def devices(self) -> list[DeviceRecord]:
        return sorted(self._current().devices.values(), key=lambda r: r.device_id)

    def revoked(self) -> dict[str, dict[str, Any]]:
        return dict(self._current().revoked)

    def __len__(self) -> int:
        return len(self._current().devices)

    def refresh(self, force: bool = False) -> None:
        """Bring the snapshot up to date: a few stat calls when nothing changed; otherwise only the
        records whose files changed are read again (see :mod:`.registry_snapshot`)."""
        with self._lock:
            self._snap = self._loader.update(self._snap, force=force)

    def watch(self, interval: float = 0.25, *, full_scan_s: float = 10.0) -> None:
        """Keep the snapshot current from background threads; lookups then only read it and never
        load on the caller's thread. Every ``interval`` seconds: the change journal (enrolments
        through this module) and ``revoked/``. Every ``full_scan_s`` seconds, on a second thread
        so a revocation never waits behind it: a listing of ``devices/`` (records changed by
        hand). Idempotent; :meth:`close` stops both threads."""
        if self._watcher is not None:
            return
        self.refresh()
        # 50,000 records are ~10^6 objects: a full cyclic-GC pass over them stalls every thread
        # for ~100 ms. They live as long as the process: move them out of the collector's sight.
        gc.freeze()
        stop = threading.Event()
        fast = threading.Thread(target=self._watch, args=(interval, stop), name="registry-watch", daemon=True)
        slow = threading.Thread(target=self._list, args=(full_scan_s, stop), name="registry-list", daemon=True)
        self._watcher = (stop, (fast, slow))
        fast.start()
        slow.start()

    def close(self) -> None:
        """Stop the background threads (if any)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher[0].set()
            for thread in watcher[1]:
                thread.join(timeout=5)

    # --- internals --------------------------------------------------------------------------------

    def _current(self) -> Snapshot:
        if self._watcher is None:
            self.refresh()
        return self._snap

    def _watch(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                with self._lock:
                    self._snap = self._loader.update(self._snap, list_devices=False)
            except OSError as exc:  # a directory briefly unreadable: keep the last snapshot
                log.warning("registry_refresh_failed", error=type(exc).__name__)

    def _list(self, every: float, stop: threading.Event) -> None:
        while not stop.wait(every):
            if not self._loader.devices_moved():
                continue
            listing, stamp = self._loader.list_devices()  # the slow part, outside the lock
            with self._lock:
                self._snap = self._loader.apply_listing(self._snap, listing, stamp)

    def _invalidate(self) -> None:
        self._loader.invalidate()

    def _journal(self, device_id: str) -> None:
        """Append the device id to the change journal (after the record's rename): watching
        registries re-read just that record. Best effort: a listing catches up without it."""
        try:
            fd = os.open(self._loader.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            log.warning("registry_journal_unwritable", error=type(exc).__name__)
            return
        try:
            os.write(fd, device_id.encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _read_device(path: Path) -> DeviceRecord | None:
        raw = read_small_file(path)  # regular files only, size-bounded, never blocks
        if raw is None:
            return None
        try:
            data = loads_bounded(raw, max_bytes=MAX_RECORD, max_depth=4, what="registry record")
            device_id, site, counter = data["device_id"], data["site"], data["counter"]
            key, pem = _record_key(data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, SealError):
            log.warning("registry_record_unreadable", file=path.name)
            return None
        if path.stem != device_id:
            log.warning("registry_record_inconsistent", file=path.name)
            return None
        if not all(valid_device_name(v) for v in (device_id, site, counter)):  # e.g. a 65-128 character counter
            log.warning("registry_record_bad_name", file=path.name, rule=NAME_RULE)
            return None
        key_id = key_id_for(key)
        if data.get("key_id") not in (None, key_id):
            log.warning("registry_key_id_mismatch", file=path.name)
            return None
        return DeviceRecord(
            device_id,
            site,
            counter,
            key_id,
            key,
            pem,
            data.get("certificate_pem"),
            str(data.get("enrolled_at", "")),
        )
