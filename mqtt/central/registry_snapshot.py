"""Incremental loading of the registry directory into immutable snapshots.

Theory of operation. A registry of 50,000 devices cannot be re-read on every change (parsing
every public key took 3.5 s), and a listener's message thread must never wait for a load. So:

- :class:`Snapshot` is an immutable view (devices by id, by key id, revocations). Readers take
  the current one with a single attribute read; a load builds a new one and swaps it in, so a
  reader never sees half a load and never takes a lock.
- :class:`Loader` remembers, per file, its inode, mtime and size. When a directory's mtime
  moved (any enrolment or revocation renames a file into it), it lists the directory and
  re-reads only the files whose signature changed; a removed file drops its record. Records are
  written by rename, so a changed record always has a new inode even within one mtime tick.
- Directory mtimes are coarse (one kernel tick): a stamp taken within ``_RACY_NS`` of the scan
  is not trusted, and the next update lists the directory again (cheap: stat only).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import structlog
from idstation.mqtt.seal import SealError, loads_bounded

if TYPE_CHECKING:
    from idstation.mqtt.central.registry import DeviceRecord

log = structlog.get_logger(__name__)

_RACY_NS = 100_000_000
_EMPTY: Mapping[str, Any] = MappingProxyType({})

Signature = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent view of the registry. Never mutated after construction."""

    devices: Mapping[str, DeviceRecord] = field(default_factory=lambda: _EMPTY)
    by_key: Mapping[str, DeviceRecord] = field(default_factory=lambda: _EMPTY)
    revoked: Mapping[str, dict[str, Any]] = field(default_factory=lambda: _EMPTY)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _listing(directory: Path, suffix: str) -> dict[str, tuple[Signature, str]]:
    """name -> (signature, full path) of the directory's record files (temporaries skipped)."""
    out: dict[str, tuple[Signature, str]] = {}
    try:
        entries = os.scandir(directory)
    except OSError:
        return out
    with entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(suffix):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:  # removed between listing and stat
                continue
            out[entry.name] = ((st.st_ino, st.st_mtime_ns, st.st_size), entry.path)
    return out


MAX_RECORD = 64 * 1024  # a record is a key, a certificate and a few names: ~2 KB


def read_small_file(path: str | Path, max_bytes: int = MAX_RECORD) -> bytes | None:
    """The bytes of a regular file of at most ``max_bytes``, else None (logged).

    Opened without following a symlink and without blocking (a FIFO or a device never blocks the
    reader), checked with fstat before any read, read at most ``max_bytes + 1``.
    """
    name = Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        log.warning("registry_record_unreadable", file=name)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            log.warning("registry_record_not_a_file", file=name)
            return None
        if st.st_size > max_bytes:
            log.warning("registry_record_too_large", file=name, size=st.st_size)
            return None
        data = os.read(fd, max_bytes + 1)
    except OSError:
        log.warning("registry_record_unreadable", file=name)
        return None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        log.warning("registry_record_too_large", file=name)
        return None
    return data


def _read_revocation(path: str) -> dict[str, Any]:
    """A revocation's details; its presence alone revokes, whatever the file holds (fail closed)."""
    data = read_small_file(path)
    try:
        info = loads_bounded(data, max_bytes=MAX_RECORD, max_depth=4, what="revocation") if data else {}
    except SealError:
        info = {}
    return info if isinstance(info, dict) else {}


class Loader:
    """Turns the directory's current state into a :class:`Snapshot`, re-reading only what changed.
    Not thread-safe: one caller at a time (the registry holds a lock around :meth:`update`)."""

    def __init__(
        self, devices_dir: Path, revoked_dir: Path, read_device: Callable[[Path], DeviceRecord | None]
    ) -> None:
        self.devices_dir, self.revoked_dir, self._read_device = devices_dir, revoked_dir, read_device
        self._stamp: tuple[int, int] | None = None
        self._device_sigs: dict[str, Signature] = {}
        self._records: dict[str, DeviceRecord] = {}  # by file name
        self._revoked_sigs: dict[str, Signature] = {}
        self._revocations: dict[str, dict[str, Any]] = {}  # by file name (<id>.json or <id>)

    def invalidate(self) -> None:
        """The next :meth:`update` lists both directories (after this process wrote to them)."""
        self._stamp = None

    def update(self, snap: Snapshot, *, force: bool = False) -> Snapshot:
        wall = time.time_ns()
        stamp = (_mtime(self.devices_dir), _mtime(self.revoked_dir))
        if not force and stamp == self._stamp:
            return snap
        if force:
            self._device_sigs, self._revoked_sigs = {}, {}
        devices_changed = self._scan_devices()
        revoked_changed = self._scan_revoked()
        self._stamp = stamp if wall - max(stamp) > _RACY_NS else None
        if not (devices_changed or revoked_changed or force):
            return snap
        if devices_changed or force:
            devices = {r.device_id: r for r in sorted(self._records.values(), key=lambda r: r.device_id)}
            by_key = {r.key_id: r for r in devices.values()}
            snap = Snapshot(MappingProxyType(devices), MappingProxyType(by_key), snap.revoked)
        if revoked_changed or force:
            revoked = {name.removesuffix(".json"): info for name, info in sorted(self._revocations.items())}
            snap = Snapshot(snap.devices, snap.by_key, MappingProxyType(revoked))
        log.debug("registry_loaded", devices=len(snap.devices), revoked=len(snap.revoked))
        return snap

    def _scan_devices(self) -> bool:
        listing = _listing(self.devices_dir, ".json")
        changed = False
        for name in self._device_sigs.keys() - listing.keys():
            self._records.pop(name, None)
            changed = True
        for name, (sig, path) in listing.items():
            if self._device_sigs.get(name) == sig:
                continue
            changed = True
            record = self._read_device(Path(path))
            if record is None:
                self._records.pop(name, None)
            else:
                self._records[name] = record
        self._device_sigs = {name: sig for name, (sig, _path) in listing.items()}
        return changed

    def _scan_revoked(self) -> bool:
        listing = _listing(self.revoked_dir, "")
        changed = False
        for name in self._revoked_sigs.keys() - listing.keys():
            self._revocations.pop(name, None)
            changed = True
        for name, (sig, path) in listing.items():
            if self._revoked_sigs.get(name) != sig:
                self._revocations[name] = _read_revocation(path)
                changed = True
        self._revoked_sigs = {name: sig for name, (sig, _path) in listing.items()}
        return changed
