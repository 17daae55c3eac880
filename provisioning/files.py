"""Durable file writes: write, fsync, rename, fsync the directory.

A power cut leaves either the old file or the new one, never half of one. Secrets are created
with mode 0600 from the first byte (no chmod window) and handed to the service user when we run
as root and that user exists.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from pathlib import Path

SERVICE_USER = "idstation"


def service_owner(user: str = SERVICE_USER) -> tuple[int, int] | None:
    """(uid, gid) of the service user when we run as root and it exists, else None (keep ours)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creates, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, *, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Create ``path`` (it must not exist) with ``mode`` from the start, write and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # umask may have narrowed it; never widens a secret
        if owner is not None:
            os.fchown(fd, *owner)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` atomically: write a temporary sibling, fsync, rename over, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        write_new(tmp, data, mode=mode, owner=owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def make_private_dir(path: Path, *, mode: int = 0o700, owner: tuple[int, int] | None = None) -> None:
    """Create ``path`` (and parents) if missing; the leaf gets ``mode`` and ``owner``."""
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, *owner)
