"""Durable file writes on the box's storage: write, fsync, rename, fsync the directory.

A power cut leaves either the old file or the new one, never half of one. A file is created with
its final mode from the first byte (no chmod window for secrets). These are the bottom-layer
primitives that the outbox, the device registry and the provisioning tools share.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["DEFAULT_STATE_DIR", "fsync_dir", "make_private_dir", "write_atomic", "write_new"]

DEFAULT_STATE_DIR = Path("/var/lib/idstation")  # the box's state (identity, outbox, status); systemd StateDirectory


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creates, renames, unlinks) durable."""
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
    """Replace ``path`` atomically: write a fresh temporary sibling, fsync, rename over, fsync the directory.

    The temporary name is unique per call, so two writers of the same file (threads or
    processes) never share one; the last rename wins and each result is a whole file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
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
