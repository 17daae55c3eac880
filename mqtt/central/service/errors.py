"""Errors of the centre's HTTP service (messages name what went wrong, never a citizen's data)."""

from __future__ import annotations

from idstation.hal.errors import IdstationError


class ServiceError(IdstationError):
    """The HTTP service could not start or serve (bad flags, unreadable key, store unavailable)."""


class ClientsError(ServiceError):
    """The clients file is unreadable, malformed, or a client name or counter binding is invalid."""
