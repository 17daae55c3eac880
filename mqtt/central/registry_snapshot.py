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
- Listing 50,000 records still costs about a second on a busy host, so enrolments also append
  the device id to a change journal (``DIR/changes.log``, O_APPEND lines): a watching registry
  reads the journal's new lines and re-reads only the files named there, and lists ``devices/``
  at most every ``full_scan_s`` seconds (a record dropped in by hand is seen then). ``revoked/``
  is small and listed whenever its mtime moves, so a revocation never waits for a device scan.
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
JOURNAL = "changes.log"
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
    Not thread-safe: one caller at a time (the registry holds a lock around :meth:`update` and
    :meth:`apply_listing`; :meth:`list_devices` is pure I/O and runs outside it)."""

    def __init__(
        self, devices_dir: Path, revoked_dir: Path, read_device: Callable[[Path], DeviceRecord | None]
    ) -> None:
        self.devices_dir, self.revoked_dir, self._read_device = devices_dir, revoked_dir, read_device
        self.journal = devices_dir.parent / JOURNAL
        self._journal_at: tuple[int, int] = (-1, 0)  # (inode, offset read up to)
        self._stamps: list[int | None] = [None, None]  # devices/, revoked/
        self._device_sigs: dict[str, Signature] = {}
        self._records: dict[str, DeviceRecord] = {}  # by file name
        self._moves: list[tuple[DeviceRecord | None, DeviceRecord | None]] = []  # (old, new) not yet applied
        self._revoked_sigs: dict[str, Signature] = {}
        self._revocations: dict[str, dict[str, Any]] = {}  # by file name (<id>.json or <id>)

    def invalidate(self) -> None:
        """The next :meth:`update` lists both directories (after this process wrote to them)."""
        self._stamps = [None, None]

    def devices_moved(self) -> bool:
        """``devices/`` changed since its last listing (two cheap stat calls)."""
        return _mtime(self.devices_dir) != self._stamps[0]

    def update(self, snap: Snapshot, *, force: bool = False, list_devices: bool = True) -> Snapshot:
        """The journal's records; ``revoked/`` if its mtime moved; ``devices/`` too if its mtime
        moved and ``list_devices`` (a watching registry lists it on its own thread instead)."""
        if force:  # start again from nothing; readers keep the old snapshot until the swap
            self._device_sigs, self._records, self._moves = {}, {}, []
            self._revoked_sigs, self._revocations, self._stamps = {}, {}, [None, None]
            snap = Snapshot()
        self._read_journal()
        if list_devices and self.devices_moved():
            snap = self.apply_listing(snap, *self.list_devices())
        stamp = _mtime(self.revoked_dir)
        if stamp != self._stamps[1]:
            wall = time.time_ns()
            if self._scan_revoked():
                revoked = {name.removesuffix(".json"): info for name, info in sorted(self._revocations.items())}
                snap = Snapshot(snap.devices, snap.by_key, MappingProxyType(revoked))
            self._stamps[1] = stamp if wall - stamp > _RACY_NS else None
        return self._apply(snap)

    def list_devices(self) -> tuple[dict[str, tuple[Signature, str]], int | None]:
        """(listing, stamp to remember): pure I/O, safe outside the registry's lock."""
        wall, stamp = time.time_ns(), _mtime(self.devices_dir)
        return _listing(self.devices_dir, ".json"), (stamp if wall - stamp > _RACY_NS else None)

    def apply_listing(self, snap: Snapshot, listing: dict[str, tuple[Signature, str]], stamp: int | None) -> Snapshot:
        """Re-read what the listing shows changed, drop what it no longer holds."""
        for name in self._device_sigs.keys() - listing.keys():
            if not (self.devices_dir / name).exists():  # not one the journal brought in after the listing
                self._forget(name)
        for name, (sig, path) in listing.items():
            if self._device_sigs.get(name) != sig:
                self._device_sigs[name] = sig
                self._load(name, Path(path))
        self._stamps[0] = stamp
        return self._apply(snap)

    # --- internals ---------------------------------------------------------------------------------

    def _apply(self, snap: Snapshot) -> Snapshot:
        """Fold the pending record moves into a new snapshot (a copy: readers keep the old one)."""
        if not self._moves:
            return snap
        devices, by_key = dict(snap.devices), dict(snap.by_key)
        for old, new in self._moves:
            if old is not None:
                if devices.get(old.device_id) is old:
                    del devices[old.device_id]
                if by_key.get(old.key_id) is old:
                    del by_key[old.key_id]
            if new is not None:
                devices[new.device_id] = new
                by_key[new.key_id] = new
        self._moves = []
        log.debug("registry_loaded", devices=len(devices), revoked=len(snap.revoked))
        return Snapshot(MappingProxyType(devices), MappingProxyType(by_key), snap.revoked)

    def _load(self, name: str, path: Path) -> None:
        record = self._read_device(path)
        old = self._records.pop(name, None)
        if record is not None:
            self._records[name] = record
        if old is not None or record is not None:
            self._moves.append((old, record))

    def _forget(self, name: str) -> None:
        self._device_sigs.pop(name, None)
        old = self._records.pop(name, None)
        if old is not None:
            self._moves.append((old, None))

    def _read_journal(self) -> None:
        """Re-read the records named by the journal's new lines (from the start if it is new)."""
        try:
            st = os.stat(self.journal)
        except OSError:
            return
        if (st.st_ino, st.st_size) == self._journal_at:
            return  # nothing appended since the last read: one stat, not an open and a read
        try:
            with open(self.journal, "rb") as f:
                st = os.fstat(f.fileno())
                inode, offset = self._journal_at
                if st.st_ino != inode or st.st_size < offset:
                    offset = 0
                f.seek(offset)
                data = f.read(st.st_size - offset)
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # a line being appended right now is read next time
        self._journal_at = (st.st_ino, offset + end)
        for line in sorted(set(data[:end].splitlines())):
            self._reread(line.strip().decode("utf-8", "replace") + ".json")

    def _reread(self, name: str) -> None:
        if "/" in name or name.startswith(".") or name == ".json":
            return
        path = self.devices_dir / name
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            self._forget(name)
            return
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._device_sigs.get(name) != sig:
            self._device_sigs[name] = sig
            self._load(name, path)

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
