"""Provisioning errors, under the box-side name: the classes live with the enrolment formats they
guard (``idstation.mqtt.enrolment.errors``), which the central side uses too. The name list is
that module's ``__all__``, not a copy of it."""

from __future__ import annotations

from idstation.mqtt.enrolment import errors as _errors
from idstation.mqtt.enrolment.errors import *  # noqa: F403 - the same classes under this name

__all__ = list(_errors.__all__)
