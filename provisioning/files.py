"""Files of the technician's tools: the service user, private directories, and (re-exported from
:mod:`idstation.hal.storage`) durable writes. Secrets are created with mode 0600 from the first
byte (no chmod window) and handed to the service user when we run as root and that user exists.
"""

from __future__ import annotations

import os
import pwd

from idstation.hal.storage import fsync_dir, make_private_dir, write_atomic, write_new

__all__ = ["SERVICE_USER", "fsync_dir", "make_private_dir", "service_owner", "write_atomic", "write_new"]

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
