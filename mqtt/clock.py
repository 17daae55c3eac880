"""Clock facts an event carries: is the wall clock synchronised, which boot is this."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import uuid
from pathlib import Path

_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


def clock_synced() -> bool:
    """True when the kernel says NTP (chrony, systemd-timesyncd, ntpd) has synchronised the clock."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex is ~208 bytes; modes = 0 reads only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return False
    return state not in (-1, _TIME_ERROR)


def boot_id() -> str:
    """The kernel's boot id (a new UUID at every boot), or a random one per process elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return _PROCESS_BOOT_ID


_PROCESS_BOOT_ID = str(uuid.uuid4())


def uuid7(ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, 74 random bits; time-ordered."""
    import time

    if ms is None:
        ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
